package proxy

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// acceptLoop accepts a frontend's connections until its listener closes.
// Each takes a slot of the connection bound; with none free the
// connection waits (in the kernel's backlog past the first) and the
// bound is logged, at most once a minute.
func (u *userspace) acceptLoop(f *usFront) {
	var delay time.Duration
	for {
		select {
		case u.slots <- struct{}{}:
		default:
			u.logFull()
			select { // wait for a connection to end
			case u.slots <- struct{}{}:
			case <-f.closed:
				return
			}
		}
		conn, err := f.lis.Accept()
		if err != nil {
			<-u.slots
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

// proxyTCP connects a client to a backend and copies both ways. Each
// direction ends with a half-close (CloseWrite) of the other side, so
// protocols that send their last bytes after the peer's EOF work; the
// copies run between bare *net.TCPConn, which Go turns into splice(2).
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
	finished := make(chan struct{})
	go func() {
		pipe(server, client)
		close(finished)
	}()
	pipe(client, server)
	<-finished
}

// pipe copies src to dst until src's EOF, then half-closes dst; after an
// error (a reset) it closes both, so that the other direction ends too.
func pipe(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}
