// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

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
// reads). Every connection is mutual TLS 1.3 first: with --peer-tls-ca,
// each end presents a certificate from the cluster CA naming
// certs.PeerName; with a cluster secret alone, a key derived from the
// secret (peertls.go). Inside it, a handshake names the protocol and the
// dialer's node ID and proves, both ways, that the two ends share the
// cluster secret:
//
//	dialer -> acceptor: "svcreg-peer/2" | protocol byte | 32-byte nonce Nd | ID length (1 byte) | node ID
//	acceptor -> dialer: 32-byte nonce Na | HMAC-SHA256(secret, "acceptor" | protocol | Nd | Na | ID)
//	dialer -> acceptor: HMAC-SHA256(secret, "dialer" | protocol | Nd | Na | ID)
//
// The node ID is what peer commands are audited with. Without a secret
// or TLS the MACs are keyed with nothing: anyone can complete the
// handshake, and the server says so at start. A stranger that cannot
// complete it is dropped before it can speak Raft or call a peer method.
const peerMagic = "svcreg-peer/2"

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

// maxNodeID bounds a node ID in the handshake (one length byte).
const maxNodeID = 255

func mac(secret []byte, role string, proto byte, nd, na []byte, id string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(role))
	h.Write([]byte{proto})
	h.Write(nd)
	h.Write(na)
	h.Write([]byte(id))
	return h.Sum(nil)
}

// dialHandshake runs the dialer's side of the handshake on conn.
func dialHandshake(conn net.Conn, secret []byte, proto byte, id string) error {
	if len(id) > maxNodeID {
		return fmt.Errorf("peer handshake: the node ID is %d bytes, at most %d", len(id), maxNodeID)
	}
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	nd := make([]byte, 32)
	rand.Read(nd)
	hello := append(append(append([]byte(peerMagic), proto), nd...), byte(len(id)))
	if _, err := conn.Write(append(hello, id...)); err != nil {
		return err
	}
	reply := make([]byte, 64)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return fmt.Errorf("peer handshake: %w (is the other end a svcreg peer port of this version?)", err)
	}
	na := reply[:32]
	if !hmac.Equal(reply[32:], mac(secret, "acceptor", proto, nd, na, id)) {
		return errors.New("peer handshake: the other end does not know the cluster secret")
	}
	_, err := conn.Write(mac(secret, "dialer", proto, nd, na, id))
	return err
}

// acceptHandshake runs the acceptor's side and returns the protocol and
// the dialer's node ID.
func acceptHandshake(conn net.Conn, secret []byte) (byte, string, error) {
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	hello := make([]byte, len(peerMagic)+1+32+1)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return 0, "", err
	}
	if !bytes.Equal(hello[:len(peerMagic)], []byte(peerMagic)) {
		return 0, "", errors.New("not a svcreg peer of this version")
	}
	proto, nd := hello[len(peerMagic)], hello[len(peerMagic)+1:len(peerMagic)+33]
	if proto != protoRaft && proto != protoGRPC {
		return 0, "", fmt.Errorf("unknown peer protocol %q", proto)
	}
	idb := make([]byte, hello[len(hello)-1])
	if _, err := io.ReadFull(conn, idb); err != nil {
		return 0, "", err
	}
	id := string(idb)
	na := make([]byte, 32)
	rand.Read(na)
	if _, err := conn.Write(append(na, mac(secret, "acceptor", proto, nd, na, id)...)); err != nil {
		return 0, "", err
	}
	got := make([]byte, 32)
	if _, err := io.ReadFull(conn, got); err != nil {
		return 0, "", err
	}
	if !hmac.Equal(got, mac(secret, "dialer", proto, nd, na, id)) {
		return 0, "", errors.New("it does not know the cluster secret")
	}
	return proto, id, nil
}

// peerNet is the peer port: it accepts connections, runs their handshakes
// and hands each to the Raft transport or to the peer gRPC server.
type peerNet struct {
	lis     net.Listener
	id      string // this server's node ID, sent when it dials
	secret  []byte
	tls     *certs.Reloader // the cluster CA's mutual TLS, or nil
	derived *secretTLS      // else the secret's, or nil: plaintext
	log     *slog.Logger

	raft, grpc *chanListener
	slots      chan struct{} // handshakes in progress
	wg         sync.WaitGroup
}

func newPeerNet(lis net.Listener, id string, secret []byte, tlsFiles *certs.Reloader, log *slog.Logger) (*peerNet, error) {
	var derived *secretTLS
	if tlsFiles == nil && len(secret) > 0 {
		var err error
		if derived, err = newSecretTLS(secret); err != nil {
			return nil, err
		}
	}
	return startPeerNet(&peerNet{lis: lis, id: id, secret: secret, tls: tlsFiles, derived: derived, log: log}), nil
}

func startPeerNet(p *peerNet) *peerNet {
	p.slots = make(chan struct{}, maxHandshakes)
	p.raft = newChanListener(p.lis.Addr())
	p.grpc = newChanListener(p.lis.Addr())
	p.wg.Go(p.acceptLoop)
	return p
}

// serverTLS and clientTLS are the peer port's TLS, or nil for plaintext.
func (p *peerNet) serverTLS() *tls.Config {
	switch {
	case p.tls != nil:
		return p.tls.PeerServerConfig()
	case p.derived != nil:
		return p.derived.server()
	}
	return nil
}

func (p *peerNet) clientTLS() *tls.Config {
	switch {
	case p.tls != nil:
		return p.tls.PeerClientConfig()
	case p.derived != nil:
		return p.derived.client()
	}
	return nil
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
	if cfg := p.serverTLS(); cfg != nil {
		tc := tls.Server(conn, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			want := "a key derived from the cluster secret"
			if p.tls != nil {
				want = "a certificate from the cluster CA naming " + certs.PeerName
			}
			p.log.Warn("peer connection refused: its TLS handshake failed (a server of this cluster presents "+want+")",
				"remote", conn.RemoteAddr().String(), "err", err)
			conn.Close()
			return
		}
		conn = tc
	}
	proto, id, err := acceptHandshake(conn, p.secret)
	if err != nil {
		p.log.Warn("peer connection refused: it did not complete the handshake", "remote", conn.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	target := p.grpc
	if proto == protoRaft {
		target = p.raft
	}
	if !target.deliver(&identifiedConn{Conn: conn, id: id}) {
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
	if cfg := p.clientTLS(); cfg != nil {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("peer %s: TLS: %w", addr, err)
		}
		conn = tc
	}
	if err := dialHandshake(conn, p.secret, proto, p.id); err != nil {
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
