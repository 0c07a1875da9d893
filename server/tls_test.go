// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/certs"
)

// testPKI is a CA and the files of a server certificate it issued, made
// in the test.
type testPKI struct {
	ca            *certs.CA
	dir           string
	certFile, key string
	caFile        string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, err := certs.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca, dir: t.TempDir()}
	p.certFile, p.key, p.caFile = filepath.Join(p.dir, "server.pem"), filepath.Join(p.dir, "server-key.pem"), filepath.Join(p.dir, "ca.pem")
	if err := ca.Save(p.dir); err != nil {
		t.Fatal(err)
	}
	p.issueServer(t, "server-1")
	return p
}

// issueServer writes a new server certificate over the files.
func (p *testPKI) issueServer(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	leaf, err := p.ca.Issue(certs.Leaf{CommonName: name, Hosts: []string{"127.0.0.1"}, Peer: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WritePair(leaf, p.certFile, p.key); err != nil {
		t.Fatal(err)
	}
	// The reloader notices changes by modification time: make this write
	// differ from the last whatever the file system's time granularity.
	future := time.Now().Add(time.Duration(len(name)) * time.Hour)
	os.Chtimes(p.certFile, future, future)
	return leaf.Leaf
}

// client returns a TLS client configuration trusting the CA, presenting
// a client certificate with the given URI SAN when uri is set.
func (p *testPKI) client(t testing.TB, uri string) *tls.Config {
	t.Helper()
	conf := &tls.Config{RootCAs: p.ca.Pool(), MinVersion: tls.VersionTLS12}
	if uri != "" {
		leaf, err := p.ca.Issue(certs.Leaf{CommonName: "client", URIs: []string{uri}, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{*leaf}
	}
	return conf
}

func startTLSServer(t testing.TB, p *testPKI, clientCA bool) *authServer {
	t.Helper()
	cfg := Config{Security: Security{TLSCert: p.certFile, TLSKey: p.key}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if clientCA {
		cfg.Security.TLSClientCA = p.caFile
	}
	as := startAuthServerWith(t, cfg, func(srv *Server) *grpc.ClientConn {
		conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(p.client(t, "spiffe://test/admin"))))
		if err != nil {
			t.Fatal(err)
		}
		return conn
	})
	as.base = "https://" + as.HTTPAddr()
	return as
}

// servedSerial is the serial number of the certificate a new TLS
// connection to addr sees.
func servedSerial(t testing.TB, p *testPKI, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, p.client(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSRotationKeepsOpenWatches: a new certificate is served to new
// connections once the files change (ReloadTLS, as on SIGHUP), an open
// watch carries on across the rotation without a reconnect, and a broken
// file keeps the last good certificate.
func TestTLSRotationKeepsOpenWatches(t *testing.T) {
	p := newTestPKI(t)
	as := startTLSServer(t, p, false)
	ctx := as.as(as.bearer["bootstrap"])
	first := servedSerial(t, p, as.GRPCAddr())

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := as.client.WatchEndpoints(wctx, &svcregv1.WatchEndpointsRequest{Namespace: "own", Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	recvUntil(t, st, svcregv1.EventType_EVENT_TYPE_SYNCED)

	second := p.issueServer(t, "server-2").SerialNumber.String()
	as.ReloadTLS()
	if got := servedSerial(t, p, as.GRPCAddr()); got != second || got == first {
		t.Fatalf("after the rotation new connections see serial %s, want %s (was %s)", got, second, first)
	}
	if got := servedSerial(t, p, as.HTTPAddr()); got != second {
		t.Errorf("REST serves serial %s after the rotation, want %s", got, second)
	}
	if _, err := as.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-2", Namespace: "own",
		Ip: "10.0.0.2", Labels: map[string]string{"app": "web"}}}); err != nil {
		t.Fatal(err)
	}
	if ev := recvUntil(t, st, svcregv1.EventType_EVENT_TYPE_ADDED); ev.GetEndpoint().GetInstance() != "web-2" {
		t.Errorf("the open watch got %v after the rotation, want web-2 ADDED", ev)
	}

	if err := os.WriteFile(p.certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	as.ReloadTLS()
	if got := servedSerial(t, p, as.GRPCAddr()); got != second {
		t.Errorf("a broken certificate file replaced the served one: serial %s, want %s", got, second)
	}
}

func recvUntil(t testing.TB, st grpc.ServerStreamingClient[svcregv1.WatchEndpointsResponse], typ svcregv1.EventType) *svcregv1.WatchEndpointsResponse {
	t.Helper()
	for {
		ev, err := st.Recv()
		if err != nil {
			t.Fatalf("waiting for %v: %v", typ, err)
		}
		if ev.GetType() == typ {
			return ev
		}
	}
}

// TestClientCertificateIdentity: with --tls-client-ca, a certificate's URI
// SAN bound to a role acts with that role on direct gRPC connections, an
// unbound one is UNAUTHENTICATED, a connection without a certificate is
// refused, and REST (through the gateway) never honours the identity.
func TestClientCertificateIdentity(t *testing.T) {
	p := newTestPKI(t)
	as := startTLSServer(t, p, true)
	boot := as.as(as.bearer["bootstrap"])
	if _, err := svcregv1grpc.NewTokenServiceClient(as.conn).CreateToken(boot, &svcregv1.CreateTokenRequest{Token: &svcregv1.Token{
		Identity: "spiffe://test/reader", Roles: []*svcregv1.RoleBinding{{Role: svcregv1.Role_ROLE_READER, Namespaces: []string{"own"}}}}}); err != nil {
		t.Fatal(err)
	}
	dial := func(uri string) svcregv1grpc.RegistryServiceClient {
		conn, err := grpc.NewClient(as.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(p.client(t, uri))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return svcregv1grpc.NewRegistryServiceClient(conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reader := dial("spiffe://test/reader")
	if _, err := reader.GetService(ctx, &svcregv1.GetServiceRequest{Namespace: "own", Name: "web"}); err != nil {
		t.Errorf("the bound identity reads: %v", err)
	}
	if _, err := reader.DeleteService(ctx, &svcregv1.DeleteServiceRequest{Namespace: "own", Name: "web"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("the bound reader deletes: %v, want PERMISSION_DENIED", err)
	}
	if _, err := dial("spiffe://test/nobody").GetService(ctx, &svcregv1.GetServiceRequest{Namespace: "own", Name: "web"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("an unbound identity: %v, want UNAUTHENTICATED", err)
	}
	if _, err := dial("").GetService(ctx, &svcregv1.GetServiceRequest{Namespace: "own", Name: "web"}); status.Code(err) != codes.Unavailable {
		t.Errorf("no client certificate: %v, want the handshake refused (UNAVAILABLE)", err)
	}
	// A token beats the certificate: the identity's binding does not add.
	tokCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+auth.NewSecret())
	if _, err := reader.GetService(tokCtx, &svcregv1.GetServiceRequest{Namespace: "own", Name: "web"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("an unknown token over a bound certificate: %v, want UNAUTHENTICATED", err)
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: p.client(t, "spiffe://test/reader")}}
	resp, err := hc.Get(as.base + "/v1/namespaces/own/services/web")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("REST with a bound certificate and no token: %d %q, want 401 with WWW-Authenticate: Bearer", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestExposureNeedsTLSAndAuth: a port that is not loopback refuses to
// start without TLS and auth (naming the flags), unless InsecureExpose;
// the checks run before anything binds.
func TestExposureNeedsTLSAndAuth(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // "" starts
	}{
		{"gRPC on every interface", Config{GRPCAddr: "0.0.0.0:0"}, "--tls-cert"},
		{"REST on an address", Config{HTTPAddr: "192.0.2.1:0"}, "--tls-cert"},
		{"peer port on an address", Config{RaftAddr: "192.0.2.1:7401"}, "--peer-tls-ca"},
		{"auth off exposed", Config{GRPCAddr: ":0", Security: Security{Auth: AuthOff, TLSCert: "c", TLSKey: "k"}}, "--insecure-expose"},
		{"auth without a bootstrap token or data dir", Config{Security: Security{Auth: AuthOn}}, "--bootstrap-token-file"},
		{"auth on a peer port without TLS or secret", Config{RaftTransport: nil, PeerAddr: "127.0.0.1:0",
			Security: Security{Auth: AuthOn, BootstrapToken: auth.NewSecret()}}, "--cluster-secret-file"},
		{"a client CA without a certificate", Config{Security: Security{TLSClientCA: "ca.pem"}}, "--tls-cert"},
		{"a short bootstrap token", Config{Security: Security{BootstrapToken: "short"}}, "16 to 512"},
		{"a bad hidden namespace", Config{Security: Security{DNSHiddenNamespaces: []string{"Bad*"}}}, "--dns-hide-namespace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			for _, a := range []*string{&cfg.GRPCAddr, &cfg.HTTPAddr, &cfg.DNSAddr} {
				if *a == "" {
					*a = "127.0.0.1:0"
				}
			}
			cfg.Logger = quiet
			srv, err := New(cfg)
			if err == nil {
				srv.closeListeners()
				t.Fatalf("started; want an error naming %s", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}
