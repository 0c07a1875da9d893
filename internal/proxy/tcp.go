// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// acceptLoop accepts a frontend's connections until its listener closes.
// Each connection takes a slot of the connection bound once accepted;
// with none free it waits for one, and the loop accepts nothing more
// meanwhile (the others wait in the kernel's backlog), so a frontend holds
// at most one connection beyond the bound, and an idle frontend holds no
// slot. The bound is logged at most once a minute.
func (u *userspace) acceptLoop(f *usFront) {
	var delay time.Duration
	for {
		conn, err := f.lis.Accept()
		if err != nil {
			if isClosed(err) {
				return
			}
			// Out of descriptors, most likely: back off and keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			u.log.Warn("accepting a connection", "frontend", f.front.key.String(), "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case u.slots <- struct{}{}:
		default:
			u.logFull()
			select { // wait for a connection to end
			case u.slots <- struct{}{}:
			case <-f.closed:
				conn.Close()
				return
			}
		}
		go func() {
			defer func() { <-u.slots }()
			u.proxyTCP(f, conn.(*net.TCPConn))
		}()
	}
}

var lastFullLog atomic.Int64

func (u *userspace) logFull() {
	now := time.Now().UnixNano()
	if last := lastFullLog.Load(); now-last > int64(time.Minute) && lastFullLog.CompareAndSwap(last, now) {
		u.log.Warn("the proxied connection bound is reached: new connections wait until some close (--max-conns)", "max_conns", u.limits.Conns)
	}
}

// proxyTCP connects a client to a backend and copies both ways until
// both sides have finished, or the connection idles, or one side has
// finished and the other moved nothing for the half-close timeout.
func (u *userspace) proxyTCP(f *usFront, client *net.TCPConn) {
	defer client.Close()
	backend, done, err := u.dial(context.Background(), f, "tcp", clientHost(client.RemoteAddr()))
	if err != nil {
		u.log.Info("no backend took a connection", "frontend", f.front.key.String(), "service", f.front.service, "client", client.RemoteAddr().String(), "err", err)
		return
	}
	defer done()
	server := backend.(*net.TCPConn)
	defer server.Close()
	c := &tcpPair{client: client, server: server, idle: u.limits.Idle, halfClose: u.limits.HalfClose}
	c.run()
}

// tcpPair is one proxied connection. Each direction is copied by the
// kernel (splice(2): the copies run between bare *net.TCPConn) and ends
// with a half-close (CloseWrite) of the other side, so protocols that
// send their last bytes after the peer's EOF work.
//
// A watchdog bounds its life without touching the copies (a wrapped
// socket loses splice, and a write deadline that fires mid-splice drops
// what the pipe holds): it reads how many bytes each socket has received
// from the kernel (TCP_INFO), and closes both sockets when nothing
// arrived from either peer for idle, or, once one direction has finished,
// for halfClose. A client gone while its backend neither reads nor closes
// (or the reverse) no longer holds its slot and descriptors forever.
type tcpPair struct {
	client, server *net.TCPConn
	idle           time.Duration
	halfClose      time.Duration

	half atomic.Bool // one direction has finished

	timer *time.Timer
	// The watchdog's state (its callbacks may overlap: a Reset while one
	// runs starts another).
	mu       sync.Mutex
	received uint64
	lastMove time.Time
}

func (c *tcpPair) run() {
	c.lastMove = time.Now()
	c.timer = time.AfterFunc(c.idle, c.watch)
	defer c.timer.Stop()
	finished := make(chan struct{})
	go func() {
		c.copy(c.server, c.client)
		close(finished)
	}()
	c.copy(c.client, c.server)
	<-finished
}

// copy moves src to dst until src's EOF, then half-closes dst; after an
// error (a reset, or the watchdog's close) it closes both, so that the
// other direction ends too.
func (c *tcpPair) copy(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
	if c.half.CompareAndSwap(false, true) {
		c.timer.Reset(0) // the bound is now halfClose: look at once
	}
}

// watch is the watchdog: it closes the pair once nothing moved for its
// bound, else looks again when the bound would be reached.
func (c *tcpPair) watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := receivedBytes(c.client) + receivedBytes(c.server); got != c.received {
		c.received, c.lastMove = got, time.Now()
	}
	bound := c.idle
	if c.half.Load() {
		bound = min(c.idle, c.halfClose)
	}
	if wait := time.Until(c.lastMove.Add(bound)); wait > 0 {
		c.timer.Reset(wait)
		return
	}
	c.client.Close()
	c.server.Close()
}

// receivedBytes is how many bytes the socket has received from its peer
// (tcpi_bytes_received), or 0 when the kernel cannot say.
func receivedBytes(conn *net.TCPConn) uint64 {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	var n uint64
	raw.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = info.Bytes_received
		}
	})
	return n
}

// descriptorsPerConn is what one proxied TCP connection holds at most:
// its two sockets, and while both directions are copying, a pipe (two
// descriptors) per direction that Go's splice(2) takes from its pool.
// Measured in docs/benchmarks.md.
const descriptorsPerConn = 6

// descriptorReserve is what the agent keeps for everything else: its
// registry connection, listeners, UDP flows' sockets, netlink.
const descriptorReserve = 1024

// fitDescriptors lowers the connection bound when the process's
// descriptor limit (Go raises the soft limit to the hard one at start)
// cannot hold it, so that the bound, not EMFILE, is what new connections
// meet.
func fitDescriptors(conns int, log *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return conns
	}
	fit := (int64(lim.Cur) - descriptorReserve) / descriptorsPerConn
	if int64(conns) <= fit {
		return conns
	}
	fit = max(fit, 1)
	log.Warn("--max-conns is more than this process's descriptor limit holds: lowered (each proxied connection holds up to 6 descriptors; raise the limit, e.g. LimitNOFILE=, to keep it)",
		"max_conns", conns, "lowered_to", fit, "nofile_limit", lim.Cur)
	return int(fit)
}
