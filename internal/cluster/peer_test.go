package cluster

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

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
	p := newPeerNet(lis, secret, tls, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
