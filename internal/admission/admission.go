// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package admission shares a server's connections and requests fairly
// among its clients, before anything is authenticated: one client (one
// address) can hold at most a share of the connections and of the
// requests in flight, and a few connections past the bound are kept for
// health checks, so that an orchestrator's probe is answered while the
// API is saturated.
//
// A connection past a client's share, or past the bound and its reserve,
// is closed as soon as it is accepted (the client sees a reset or EOF and
// retries); a request past a client's share of requests in flight is
// refused at once (gRPC RESOURCE_EXHAUSTED, HTTP 429). Each refusal is
// logged, at most once a minute per kind, naming the flag that bounds it.
package admission

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config bounds one listener.
type Config struct {
	// Name names the listener in log lines ("gRPC", "HTTP").
	Name string
	// Total is the most connections held at once (the reserve aside).
	Total int
	// PerClient is the most connections one client address holds at once.
	PerClient int
	// Reserve is how many connections past Total are still accepted; they
	// serve health checks only (Reserved reports them).
	Reserve int
	// TotalFlag and PerClientFlag name the flags of Total and PerClient in
	// log lines.
	TotalFlag, PerClientFlag string
	Logger                   *slog.Logger
}

// Listener admits connections as Config says.
type Listener struct {
	net.Listener
	cfg Config

	mu     sync.Mutex
	open   int
	byHost map[string]int

	full, greedy rateLimitedLog
}

// NewListener wraps l.
func NewListener(l net.Listener, cfg Config) *Listener {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Listener{Listener: l, cfg: cfg, byHost: map[string]int{}}
}

// Accept returns the next connection within the bounds; those past them
// are closed here.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := Client(c.RemoteAddr())
		l.mu.Lock()
		switch {
		case l.byHost[host] >= l.cfg.PerClient:
			l.mu.Unlock()
			c.Close()
			l.greedy.log(func() {
				l.cfg.Logger.Warn("a client holds its share of connections: its new ones are closed", "listener", l.cfg.Name,
					"client", host, "limit", l.cfg.PerClient, "flag", l.cfg.PerClientFlag)
			})
			continue
		case l.open >= l.cfg.Total+l.cfg.Reserve:
			l.mu.Unlock()
			c.Close()
			l.full.log(func() {
				l.cfg.Logger.Warn("the connection bound and its health-check reserve are full: new connections are closed", "listener", l.cfg.Name,
					"limit", l.cfg.Total, "reserve", l.cfg.Reserve, "flag", l.cfg.TotalFlag)
			})
			continue
		}
		reserved := l.open >= l.cfg.Total
		l.open++
		l.byHost[host]++
		l.mu.Unlock()
		if reserved {
			l.full.log(func() {
				l.cfg.Logger.Warn("the connection bound is full: new connections serve health checks only", "listener", l.cfg.Name,
					"limit", l.cfg.Total, "flag", l.cfg.TotalFlag)
			})
		}
		return &conn{Conn: c, l: l, host: host, reserved: reserved}, nil
	}
}

func (l *Listener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byHost[host]--; l.byHost[host] <= 0 {
		delete(l.byHost, host)
	}
}

// Open is how many connections the listener holds.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// conn is an admitted connection.
type conn struct {
	net.Conn
	l        *Listener
	host     string
	reserved bool
	closed   atomic.Bool
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.host)
	}
	return c.Conn.Close()
}

// RemoteAddr marks the address of a reserved connection, so that a gRPC
// handler, which sees only the address (peer.FromContext), can tell.
func (c *conn) RemoteAddr() net.Addr {
	if c.reserved {
		return reservedAddr{c.Conn.RemoteAddr()}
	}
	return c.Conn.RemoteAddr()
}

// reservedAddr is the remote address of a reserved connection.
type reservedAddr struct{ net.Addr }

// Reserved reports whether a connection (or a TLS connection over one)
// was admitted from the health-check reserve.
func Reserved(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	ac, ok := c.(*conn)
	return ok && ac.reserved
}

// ReservedAddr reports whether a remote address is a reserved
// connection's.
func ReservedAddr(a net.Addr) bool {
	_, ok := a.(reservedAddr)
	return ok
}

// Client is the client part of a remote address: its host.
func Client(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ra, ok := a.(reservedAddr); ok {
		a = ra.Addr
	}
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// InFlight bounds the requests one client has in flight.
type InFlight struct {
	limit int
	flag  string
	log   *slog.Logger

	mu     sync.Mutex
	byHost map[string]int
	greedy rateLimitedLog
}

// NewInFlight bounds each client at limit requests in flight; flag names
// the limit in log lines.
func NewInFlight(limit int, flag string, log *slog.Logger) *InFlight {
	if log == nil {
		log = slog.Default()
	}
	return &InFlight{limit: limit, flag: flag, log: log, byHost: map[string]int{}}
}

// Acquire takes one of the client's slots; false when it has none left.
// Each successful Acquire is followed by one Release.
func (f *InFlight) Acquire(client string) bool {
	f.mu.Lock()
	if f.byHost[client] >= f.limit {
		f.mu.Unlock()
		f.greedy.log(func() {
			f.log.Warn("a client has its share of requests in flight: its new ones are refused", "client", client, "limit", f.limit, "flag", f.flag)
		})
		return false
	}
	f.byHost[client]++
	f.mu.Unlock()
	return true
}

// Count is how many requests a client has in flight.
func (f *InFlight) Count(client string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byHost[client]
}

// Release gives a slot back.
func (f *InFlight) Release(client string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byHost[client]--; f.byHost[client] <= 0 {
		delete(f.byHost, client)
	}
}

// rateLimitedLog runs a log call at most once a minute.
type rateLimitedLog struct{ last atomic.Int64 }

func (r *rateLimitedLog) log(f func()) {
	now := time.Now().UnixNano()
	if last := r.last.Load(); now-last > int64(time.Minute) && r.last.CompareAndSwap(last, now) {
		f()
	}
}
