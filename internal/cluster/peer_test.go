// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/svcreg/svcreg/internal/certs"
)

// peerTLS writes a certificate from ca (naming the peer name when peer)
// and returns a reloader over it with trusted as the cluster CA.
func peerTLS(t *testing.T, ca, trusted *certs.CA, peer bool) *certs.Reloader {
	t.Helper()
	dir := t.TempDir()
	leaf, err := ca.Issue(certs.Leaf{CommonName: "node", Hosts: []string{"127.0.0.1"}, Peer: peer, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	files := certs.Files{Cert: filepath.Join(dir, "node.pem"), Key: filepath.Join(dir, "node-key.pem"), CA: filepath.Join(dir, "ca.pem")}
	if err := certs.WritePair(leaf, files.Cert, files.Key); err != nil {
		t.Fatal(err)
	}
	if err := trusted.Save(dir); err != nil {
		t.Fatal(err)
	}
	r, err := certs.NewReloader(files, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func listenPeer(t *testing.T, secret []byte, tls *certs.Reloader) *peerNet {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPeerNet(lis, "test-node", secret, tls, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.close() })
	return p
}

// TestPeerPortAdmitsOnlyTheCluster: over mutual TLS the peer port admits
// a server whose certificate the cluster CA signed for the peer name, and
// refuses one from another CA, a cluster-CA certificate without the peer
// name (a client's), one that does not know the secret, and plaintext.
func TestPeerPortAdmitsOnlyTheCluster(t *testing.T) {
	cluster, err := certs.NewCA("cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.NewCA("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("the cluster's shared secret")
	acceptor := listenPeer(t, secret, peerTLS(t, cluster, cluster, true))
	admitted := make(chan net.Conn, 1)
	go func() {
		if c, err := acceptor.grpc.Accept(); err == nil {
			admitted <- c
		}
	}()
	for _, tt := range []struct {
		name   string
		secret []byte
		tls    *certs.Reloader
		ok     bool
	}{
		{"a certificate from another CA", secret, peerTLS(t, other, cluster, true), false},
		{"a cluster certificate without the peer name", secret, peerTLS(t, cluster, cluster, false), false},
		{"the wrong secret", []byte("another secret, same length!"), peerTLS(t, cluster, cluster, true), false},
		{"plaintext", secret, nil, false},
		{"a server of the cluster", secret, peerTLS(t, cluster, cluster, true), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dialer := listenPeer(t, tt.secret, tt.tls)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := dialer.dial(ctx, acceptor.lis.Addr().String(), protoGRPC)
			if tt.ok != (err == nil) {
				t.Fatalf("dial: %v, want admitted %v", err, tt.ok)
			}
			if err != nil {
				return
			}
			defer conn.Close()
			select {
			case c := <-admitted:
				c.Close()
			case <-ctx.Done():
				t.Fatal("the acceptor did not hand the connection over")
			}
		})
	}
}

// plaintextPeer is a peer port with a secret but no TLS: the handshake
// alone, as before the secret's TLS.
func plaintextPeer(t *testing.T, secret []byte) *peerNet {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := startPeerNet(&peerNet{lis: lis, id: "test-node", secret: secret, log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { p.close() })
	return p
}

// countingHealth is a health service that counts the calls it answers.
type countingHealth struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int64
}

func (h *countingHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.calls.Add(1)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// relay is a program in the middle: a server of the cluster dials it
// (it took a peer's free port), and it dials a real server, relays the
// handshake between them, then speaks gRPC to the real server on its own.
// exact relays exactly the bytes of the svcreg handshake (the attack on a
// plaintext handshake); otherwise it relays everything until the dialer's
// handshake returned, then takes over.
func relay(t *testing.T, dialer *peerNet, target string, exact bool) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	type pair struct{ fromDialer, toTarget net.Conn }
	pairs := make(chan pair, 1)
	handed := make(chan struct{})
	go func() {
		in, err := lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			return
		}
		pairs <- pair{in, out}
		if exact {
			hello := len(peerMagic) + 1 + 32 + 1 + len(dialer.id)
			io.CopyN(out, in, int64(hello))
			io.CopyN(in, out, 64)
			io.CopyN(out, in, 32)
			close(handed)
			return
		}
		go io.Copy(out, in) // the dialer says nothing after its handshake
		buf := make([]byte, 32<<10)
		for {
			select {
			case <-handed:
				return // what the target says now is for the relay
			default:
			}
			out.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			n, err := out.Read(buf)
			in.Write(buf[:n])
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
	dialCtx, dialCancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer dialCancel()
	conn, dialErr := dialer.dial(dialCtx, lis.Addr().String(), protoGRPC)
	if conn != nil {
		defer conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var p pair
	select {
	case p = <-pairs:
	case <-ctx.Done():
		t.Fatal("the dialer never reached the relay")
	}
	defer p.fromDialer.Close()
	if exact {
		select {
		case <-handed:
		case <-ctx.Done():
		}
	} else {
		if dialErr != nil {
			return dialErr
		}
		close(handed)
		out := p.toTarget
		out.SetReadDeadline(time.Time{})
	}
	// The relay's own call, on the connection the target authenticated.
	cc, err := grpc.NewClient("passthrough:///relayed", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return p.toTarget, nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	callCtx, callCancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer callCancel()
	_, err = healthpb.NewHealthClient(cc).Check(callCtx, &healthpb.HealthCheckRequest{})
	return err
}

// TestPeerHandshakeCannotBeRelayed: a program that takes a down server's
// free peer port receives the cluster's dials; relaying their handshake to
// a real server must not give it a connection it can use. The control
// (the earlier plaintext handshake, which binds nothing after it) shows
// the relay does get through where nothing binds the session.
func TestPeerHandshakeCannotBeRelayed(t *testing.T) {
	secret := []byte("the cluster's shared secret")
	for _, tt := range []struct {
		name      string
		plaintext bool // the handshake without the secret's TLS
		exact     bool
		through   bool
	}{
		{"control: a plaintext handshake, relayed exactly", true, true, true},
		{"the secret's TLS, handshake bytes relayed exactly", false, true, false},
		{"the secret's TLS, everything relayed until the dial returns", false, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := listenPeer(t, secret, nil)
			dialer := listenPeer(t, secret, nil)
			if tt.plaintext {
				target, dialer = plaintextPeer(t, secret), plaintextPeer(t, secret)
			}
			health := &countingHealth{}
			srv := grpc.NewServer(grpc.Creds(PeerCredentials()))
			healthpb.RegisterHealthServer(srv, health)
			go srv.Serve(target.grpc)
			t.Cleanup(srv.Stop)
			err := relay(t, dialer, target.lis.Addr().String(), tt.exact)
			if got := health.calls.Load() > 0; got != tt.through || (err == nil) != tt.through {
				t.Errorf("the relay's call: %v (answered %d), want through=%v", err, health.calls.Load(), tt.through)
			}
		})
	}
}

// TestPeerIdentity: the node ID a dialer's handshake carries reaches the
// peer gRPC server's handlers (what its audit lines name).
func TestPeerIdentity(t *testing.T) {
	secret := []byte("the cluster's shared secret")
	target := listenPeer(t, secret, nil)
	dialer := listenPeer(t, secret, nil)
	dialer.id = "n7"
	got := make(chan string, 1)
	srv := grpc.NewServer(grpc.Creds(PeerCredentials()), grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		got <- PeerOf(ctx)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, &countingHealth{})
	go srv.Serve(target.grpc)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///"+target.lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dialer.dial(ctx, addr, protoGRPC) }))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != "n7" {
		t.Errorf("PeerOf = %q, want n7", id)
	}
}
