package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/svcreg/svcreg/internal/certs"
)

// The peer port carries two protocols on one listener, as Consul's server
// port does: Raft (hashicorp/raft's network transport) and the peer gRPC
// surface (PeerService, and the registry's own services for forwarded
// reads). Every connection opens with a handshake that names the protocol
// and proves, both ways, that the two ends share the cluster secret:
//
//	dialer -> acceptor: "svcreg-peer/1" | protocol byte | 32-byte nonce Nd
//	acceptor -> dialer: 32-byte nonce Na | HMAC-SHA256(secret, "acceptor" | protocol | Nd | Na)
//	dialer -> acceptor: HMAC-SHA256(secret, "dialer" | protocol | Nd | Na)
//
// Without a secret the MACs are keyed with nothing: anyone can complete
// the handshake, and the server says so at start. A stranger that cannot
// complete it is dropped before it can speak Raft or call a peer method.
// With TLS (--peer-tls-ca) the connection is mutual TLS 1.3 first: each
// end presents a certificate from the cluster CA naming certs.PeerName,
// and the handshake above then runs inside it.
const peerMagic = "svcreg-peer/1"

// Protocols of the peer port.
const (
	protoRaft byte = 'R'
	protoGRPC byte = 'G'
)

// handshakeTimeout bounds a connection's handshake, so that a silent
// client holds a socket for no longer.
const handshakeTimeout = 5 * time.Second

// maxHandshakes bounds the handshakes in progress at once.
const maxHandshakes = 128

func mac(secret []byte, role string, proto byte, nd, na []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(role))
	h.Write([]byte{proto})
	h.Write(nd)
	h.Write(na)
	return h.Sum(nil)
}

// dialHandshake runs the dialer's side of the handshake on conn.
func dialHandshake(conn net.Conn, secret []byte, proto byte) error {
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	nd := make([]byte, 32)
	rand.Read(nd)
	if _, err := conn.Write(append(append([]byte(peerMagic), proto), nd...)); err != nil {
		return err
	}
	reply := make([]byte, 64)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return fmt.Errorf("peer handshake: %w (is the other end a svcreg peer port?)", err)
	}
	na := reply[:32]
	if !hmac.Equal(reply[32:], mac(secret, "acceptor", proto, nd, na)) {
		return errors.New("peer handshake: the other end does not know the cluster secret")
	}
	_, err := conn.Write(mac(secret, "dialer", proto, nd, na))
	return err
}

// acceptHandshake runs the acceptor's side and returns the protocol.
func acceptHandshake(conn net.Conn, secret []byte) (byte, error) {
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	hello := make([]byte, len(peerMagic)+1+32)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return 0, err
	}
	if !bytes.Equal(hello[:len(peerMagic)], []byte(peerMagic)) {
		return 0, errors.New("not a svcreg peer")
	}
	proto, nd := hello[len(peerMagic)], hello[len(peerMagic)+1:]
	if proto != protoRaft && proto != protoGRPC {
		return 0, fmt.Errorf("unknown peer protocol %q", proto)
	}
	na := make([]byte, 32)
	rand.Read(na)
	if _, err := conn.Write(append(na, mac(secret, "acceptor", proto, nd, na)...)); err != nil {
		return 0, err
	}
	got := make([]byte, 32)
	if _, err := io.ReadFull(conn, got); err != nil {
		return 0, err
	}
	if !hmac.Equal(got, mac(secret, "dialer", proto, nd, na)) {
		return 0, errors.New("it does not know the cluster secret")
	}
	return proto, nil
}

// peerNet is the peer port: it accepts connections, runs their handshakes
// and hands each to the Raft transport or to the peer gRPC server.
type peerNet struct {
	lis    net.Listener
	secret []byte
	tls    *certs.Reloader // nil: plaintext
	log    *slog.Logger

	raft, grpc *chanListener
	slots      chan struct{} // handshakes in progress
	wg         sync.WaitGroup
}

func newPeerNet(lis net.Listener, secret []byte, tlsFiles *certs.Reloader, log *slog.Logger) *peerNet {
	p := &peerNet{lis: lis, secret: secret, tls: tlsFiles, log: log, slots: make(chan struct{}, maxHandshakes)}
	p.raft = newChanListener(lis.Addr())
	p.grpc = newChanListener(lis.Addr())
	p.wg.Go(p.acceptLoop)
	return p
}

func (p *peerNet) acceptLoop() {
	var delay time.Duration
	for {
		conn, err := p.lis.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay) // out of descriptors: back off, keep serving
				continue
			}
			p.raft.close()
			p.grpc.close()
			return
		}
		delay = 0
		select {
		case p.slots <- struct{}{}:
		default:
			conn.Close() // a flood of handshakes: shed it
			continue
		}
		go p.admit(conn)
	}
}

func (p *peerNet) admit(conn net.Conn) {
	defer func() { <-p.slots }()
	if p.tls != nil {
		tc := tls.Server(conn, p.tls.PeerServerConfig())
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			p.log.Warn("peer connection refused: its TLS handshake failed (a server of this cluster presents a certificate from the cluster CA naming "+certs.PeerName+")",
				"remote", conn.RemoteAddr().String(), "err", err)
			conn.Close()
			return
		}
		conn = tc
	}
	proto, err := acceptHandshake(conn, p.secret)
	if err != nil {
		p.log.Warn("peer connection refused: it did not complete the handshake", "remote", conn.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	target := p.grpc
	if proto == protoRaft {
		target = p.raft
	}
	if !target.deliver(conn) {
		conn.Close()
	}
}

// dial opens a connection to a peer port for proto.
func (p *peerNet) dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(conn, p.tls.PeerClientConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("peer %s: TLS: %w", addr, err)
		}
		conn = tc
	}
	if err := dialHandshake(conn, p.secret, proto); err != nil {
		conn.Close()
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	return conn, nil
}

func (p *peerNet) close() error {
	err := p.lis.Close()
	p.wg.Wait()
	return err
}

// raftLayer is the Raft transport's stream layer over the peer port.
type raftLayer struct{ p *peerNet }

func (l raftLayer) Accept() (net.Conn, error) { return l.p.raft.Accept() }
func (l raftLayer) Close() error              { return l.p.raft.Close() }
func (l raftLayer) Addr() net.Addr            { return l.p.lis.Addr() }

func (l raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.p.dial(ctx, string(addr), protoRaft)
}

// chanListener is a net.Listener fed connections by the peer port.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(conn net.Conn) bool {
	select {
	case l.conns <- conn:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) close()         { l.closed.Do(func() { close(l.done) }) }
func (l *chanListener) Close() error   { l.close(); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }
