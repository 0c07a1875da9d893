// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package resolver_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
	svcresolver "github.com/svcreg/svcreg/resolver"
	"github.com/svcreg/svcreg/server"
)

// fakeCC is a resolver.ClientConn that refuses the first states it gets,
// as a policy refusing an update does, and records every call.
type fakeCC struct {
	resolver.ClientConn
	mu      sync.Mutex
	refuse  int // how many more states to refuse
	states  []resolver.State
	updates chan resolver.State
}

func (c *fakeCC) UpdateState(s resolver.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states = append(c.states, s)
	c.updates <- s
	if c.refuse > 0 {
		c.refuse--
		return errors.New("the policy refused this state")
	}
	return nil
}

func (c *fakeCC) ReportError(error) {}

func (c *fakeCC) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

func (c *fakeCC) next(t *testing.T) resolver.State {
	t.Helper()
	select {
	case s := <-c.updates:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no state")
		return resolver.State{}
	}
}

// startRegistry runs a registry with one service of one instance.
func startRegistry(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitCtx, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := srv.Ready(waitCtx); err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestRefusedStatesAreRetried(t *testing.T) {
	srv := startRegistry(t)
	c := newRegistryClient(t, srv)
	createWeb(t, c, 1)
	fake := clocktest.Install(t)
	cc := &fakeCC{refuse: 2, updates: make(chan resolver.State, 10)}
	r, err := svcresolver.NewBuilder().Build(resolver.Target{URL: *mustParse(t, "svcreg://"+srv.GRPCAddr()+"/web.shop:grpc")}, cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first := cc.next(t)
	if len(first.Endpoints) != 1 {
		t.Fatalf("first state: %d endpoints", len(first.Endpoints))
	}
	for range 2 { // refused: published again after a backoff on the clock
		fake.AdvanceWhenWaiting(t, 1, 3*time.Second)
		if s := cc.next(t); len(s.Endpoints) != 1 {
			t.Fatalf("retried state: %d endpoints", len(s.Endpoints))
		}
	}
	select {
	case s := <-cc.updates:
		t.Fatalf("an accepted state was published again: %v", s)
	case <-time.After(50 * time.Millisecond):
	}

	// ResolveNow: the watch resyncs and the state is published again.
	r.ResolveNow(resolver.ResolveNowOptions{})
	if s := cc.next(t); len(s.Endpoints) != 1 {
		t.Fatalf("after ResolveNow: %d endpoints", len(s.Endpoints))
	}
	// A change after the resync still arrives.
	createWeb(t, c, 2)
	for s := cc.next(t); len(s.Endpoints) != 2; s = cc.next(t) {
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newRegistryClient(t *testing.T, srv *server.Server) svcregv1grpc.RegistryServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return svcregv1grpc.NewRegistryServiceClient(conn)
}

// createWeb makes service web.shop exist with instances web-1..web-n.
func createWeb(t *testing.T, c svcregv1grpc.RegistryServiceClient, n int) {
	t.Helper()
	ctx := context.Background()
	c.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
		Selector: map[string]string{"app": "web"}, Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "8443"}}}})
	for i := 1; i <= n; i++ {
		c.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-" + string(rune('0'+i)), Namespace: "shop",
			Ip: "10.0.0." + string(rune('0'+i)), Labels: map[string]string{"app": "web"}}})
	}
}
