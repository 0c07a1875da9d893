// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcreg/svcreg/internal/ipvs"
)

// userspace is the data plane of kube-proxy's userspace mode, done again:
// a listener on every frontend address, and per accepted connection (or
// UDP flow) a backend chosen by the service's scheduler (the scheduler
// engine, internal/ipvs: a connection is active from the pick until it
// closes, as in the kernel's IPVS), keyed on the client's address, dialled
// with retries, then bytes copied both ways by the kernel (splice) until
// each side closes.
type userspace struct {
	log    *slog.Logger
	limits Limits
	slots  chan struct{} // one per open proxied connection (file descriptors)

	mu     sync.Mutex
	fronts map[frontKey]*usFront
	wg     sync.WaitGroup
}

// Limits bound what the userspace data plane holds.
type Limits struct {
	// Conns is the most proxied TCP connections open at once; more wait in
	// the listen backlog. Each holds up to descriptorsPerConn descriptors;
	// the agent lowers the bound (and says so) when the process's
	// descriptor limit cannot hold that many. Default 20,000.
	Conns int
	// Idle ends a proxied TCP connection that moved no byte either way for
	// this long; default 15m (IPVS's TCP timeout, ipvsadm --set).
	Idle time.Duration
	// HalfClose ends a proxied TCP connection this long after one side
	// finished sending while the other has not (a client gone, a backend
	// that never closes); default 60s (conntrack's CLOSE_WAIT).
	HalfClose time.Duration
	// UDPFlows is the most UDP clients followed at once per frontend;
	// default 10,000.
	UDPFlows int
	// UDPIdle ends a UDP flow idle this long; default 30s.
	UDPIdle time.Duration
	// DialTimeouts are the connect attempts' timeouts, one per try (as
	// kube-proxy's userspace mode: 250ms, 500ms, 1s, 2s).
	DialTimeouts []time.Duration
}

func (l *Limits) setDefaults() {
	if l.Conns == 0 {
		l.Conns = 20_000
	}
	if l.Idle == 0 {
		l.Idle = 15 * time.Minute
	}
	if l.HalfClose == 0 {
		l.HalfClose = time.Minute
	}
	if l.UDPFlows == 0 {
		l.UDPFlows = 10_000
	}
	if l.UDPIdle == 0 {
		l.UDPIdle = 30 * time.Second
	}
	if len(l.DialTimeouts) == 0 {
		l.DialTimeouts = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}
	}
}

// usFront is one served address.
type usFront struct {
	front  *frontend
	engine *ipvs.Engine
	picker atomic.Pointer[ipvs.Picker]
	lis    net.Listener   // tcp
	pc     net.PacketConn // udp
	flows  *udpFlows
	// closed is closed with the frontend (an accept loop waiting for a
	// connection slot gives up).
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	down map[string]time.Time // backends refused lately, left out until then
}

func newUserspace(log *slog.Logger, limits Limits) *userspace {
	limits.setDefaults()
	return &userspace{log: log, limits: limits, slots: make(chan struct{}, limits.Conns), fronts: map[frontKey]*usFront{}}
}

// sync serves exactly the planned frontends: new ones get a listener,
// changed ones new backends (open connections are left to finish),
// removed ones lose their listener.
//
// Its memory is the listeners it holds, which it checks itself: a full
// sync has nothing more to read back from the kernel.
func (u *userspace) sync(planned map[frontKey]*frontend, _ bool) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var errs []error
	for k, f := range u.fronts {
		if _, ok := planned[k]; !ok {
			f.close()
			delete(u.fronts, k)
		}
	}
	for k, p := range planned {
		if f, ok := u.fronts[k]; ok {
			if !sameBackends(f.front, p) {
				f.update(p)
			}
			continue
		}
		f, err := u.open(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("serving %s for %s port %s: %w", k, p.service, p.port, err))
			continue
		}
		u.fronts[k] = f
	}
	return errors.Join(errs...)
}

func (u *userspace) open(p *frontend) (*usFront, error) {
	f := &usFront{front: p, engine: ipvs.New(p.config, ipvs.Options{}), down: map[string]time.Time{}, closed: make(chan struct{})}
	f.picker.Store(f.engine.Update(nil, engineBackends(p.backends)))
	var err error
	switch p.key.proto {
	case "tcp":
		if f.lis, err = net.Listen("tcp", p.key.addr); err != nil {
			f.engine.Close()
			return nil, err
		}
		u.wg.Go(func() { u.acceptLoop(f) })
	case "udp":
		if f.pc, err = net.ListenPacket("udp", p.key.addr); err != nil {
			f.engine.Close()
			return nil, err
		}
		f.flows = newUDPFlows(u.limits, u.log)
		u.wg.Go(func() { u.serveUDP(f) })
	}
	return f, nil
}

// update gives the frontend new backends (or a new scheduler).
func (f *usFront) update(p *frontend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.front = p
	f.picker.Store(f.engine.Update(p.config, f.upLocked()))
}

// upLocked is the frontend's backends without those refused lately.
func (f *usFront) upLocked() []ipvs.Backend {
	now := time.Now()
	out := make([]ipvs.Backend, 0, len(f.front.backends))
	all := engineBackends(f.front.backends)
	for _, b := range all {
		if until, ok := f.down[b.Addr]; ok && now.Before(until) {
			continue
		}
		delete(f.down, b.Addr)
		out = append(out, b)
	}
	return out
}

// refused leaves a backend that refused a connection out of new picks
// for a second (a passive check: the registry's readiness is the real
// one), unless it is the last one.
func (f *usFront) refused(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.front.backends)-len(f.down) <= 1 {
		return
	}
	f.down[addr] = time.Now().Add(time.Second)
	f.picker.Store(f.engine.Update(nil, f.upLocked()))
	time.AfterFunc(time.Second, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.picker.Store(f.engine.Update(nil, f.upLocked()))
	})
}

func (f *usFront) close() {
	f.closeOnce.Do(func() { close(f.closed) })
	if f.lis != nil {
		f.lis.Close()
	}
	if f.pc != nil {
		f.pc.Close()
	}
	f.engine.Close()
}

// stop closes every frontend and waits for their loops; open TCP
// connections are left to finish by themselves.
func (u *userspace) stop() {
	u.mu.Lock()
	for k, f := range u.fronts {
		f.close()
		delete(u.fronts, k)
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// clientHost is a connection's source address without its port: the key
// of the hashing schedulers and of ClientIP affinity.
func clientHost(a net.Addr) string {
	s := a.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || err != nil && strings.Contains(err.Error(), "use of closed network connection")
}

// dial connects to a backend for f, picking again after a refusal, up to
// one try per dial timeout. It returns the connection and its done.
func (u *userspace) dial(ctx context.Context, f *usFront, network, client string) (net.Conn, func(), error) {
	var last error
	key := ipvs.Hash(client)
	for _, timeout := range u.limits.DialTimeouts {
		got, err := f.picker.Load().Pick(ipvs.Request{Source: key, Dest: key})
		if err != nil {
			return nil, nil, fmt.Errorf("%w: none is ready, or every one is quiesced or overloaded", err)
		}
		done := got.Release
		if done == nil {
			done = func() {}
		}
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, network, got.Addr)
		if err == nil {
			return conn, done, nil
		}
		done()
		last = err
		f.refused(got.Addr)
	}
	return nil, nil, fmt.Errorf("%d tries: %w", len(u.limits.DialTimeouts), last)
}
