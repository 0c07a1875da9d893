// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
)

// dialFrom opens n raw TCP connections to addr from a loopback source
// address and holds them, idle, until the test ends; those the server
// closes are closed on this side too (the machine's descriptor limit is
// 20,000). It returns how many the server keeps.
func dialFrom(t *testing.T, from, addr string, n int) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	var open atomic.Int64
	var conns []net.Conn
	var wg sync.WaitGroup
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			continue // the kernel's backlog, full for a moment
		}
		open.Add(1)
		conns = append(conns, c)
		wg.Go(func() {
			io.Copy(io.Discard, c) // returns when the server (or the test) closes it
			c.Close()
			open.Add(-1)
		})
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	// The server closes what it does not keep as it accepts: wait for the
	// count to settle.
	last := int64(-1)
	for open.Load() != last {
		last = open.Load()
		time.Sleep(200 * time.Millisecond)
	}
	return int(last)
}

// clientFrom is a gRPC client whose connection comes from a loopback
// source address.
func clientFrom(t *testing.T, from, addr string) *grpc.ClientConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func httpFrom(from string) *http.Client {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestOneClientCannotLockOthersOut: 3,000 idle connections (three times
// its share) from one client address to each port keep only that
// client's share; another
// client's call and /healthz still answer. Before, the connection bound
// was shared by all: /healthz timed out and new clients got
// DeadlineExceeded for as long as the idle connections were held.
func TestOneClientCannotLockOthersOut(t *testing.T) {
	// Not parallel: these fill connection bounds, and another test's
	// thousands of dials beside them make some of theirs fail.
	ts := startServer(t, Config{})
	for _, addr := range []string{ts.GRPCAddr(), ts.HTTPAddr()} {
		held := dialFrom(t, "127.0.0.2", addr, 3*DefaultLimits.ConnectionsPerClient)
		t.Logf("%s: %d idle connections from 127.0.0.2: the server keeps %d", addr, 3*DefaultLimits.ConnectionsPerClient, held)
		if held > DefaultLimits.ConnectionsPerClient {
			t.Errorf("%s keeps %d of one client's connections, over its share of %d", addr, held, DefaultLimits.ConnectionsPerClient)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other := svcregv1grpc.NewRegistryServiceClient(clientFrom(t, "127.0.0.3", ts.GRPCAddr()))
	if _, err := other.ListServices(ctx, &svcregv1.ListServicesRequest{}); err != nil {
		t.Errorf("another client's call: %v", err)
	}
	if code := get(t, httpFrom("127.0.0.3"), ts.base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz from another client: %d", code)
	}
	if code := get(t, httpFrom("127.0.0.3"), ts.base+"/v1/namespaces/default/services"); code != http.StatusOK {
		t.Errorf("the REST API from another client: %d", code)
	}
}

// TestHealthChecksPastTheBound: with the connection bound held by many
// clients, the reserve past it still answers health checks (REST and
// gRPC), and only health checks.
func TestHealthChecksPastTheBound(t *testing.T) {
	// Not parallel: these fill connection bounds, and another test's
	// thousands of dials beside them make some of theirs fail.
	ts := startServer(t, Config{Limits: Limits{Connections: 100, ConnectionsPerClient: 10}})
	for i := range 12 { // 120 connections from 12 clients: the bound of 100 is full
		dialFrom(t, net.IPv4(127, 0, 1, byte(i+1)).String(), ts.HTTPAddr(), 10)
		dialFrom(t, net.IPv4(127, 0, 1, byte(i+1)).String(), ts.GRPCAddr(), 10)
	}
	probe := httpFrom("127.0.2.1")
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := get(t, probe, ts.base+path); code != http.StatusOK {
			t.Errorf("%s past the bound: %d, want 200", path, code)
		}
	}
	if code := get(t, probe, ts.base+"/v1/namespaces/default/services"); code != http.StatusServiceUnavailable {
		t.Errorf("the API on a reserved connection: %d, want 503", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := clientFrom(t, "127.0.2.2", ts.GRPCAddr())
	if resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health past the bound: %v, %v", resp, err)
	}
	_, err := svcregv1grpc.NewRegistryServiceClient(conn).ListServices(ctx, &svcregv1.ListServicesRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("the API on a reserved gRPC connection: %v, want RESOURCE_EXHAUSTED", err)
	}
}

// TestRequestsInFlightPerClient: a client with its share of requests in
// flight gets RESOURCE_EXHAUSTED (REST 429) for more; another client does
// not notice.
func TestRequestsInFlightPerClient(t *testing.T) {
	ts := startServer(t, Config{Limits: Limits{RequestsPerClient: 4}})
	greedy := svcregv1grpc.NewRegistryServiceClient(clientFrom(t, "127.0.0.4", ts.GRPCAddr()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Reads that wait for a revision far ahead stay in flight (up to 5 s,
	// or until cancelled).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			greedy.ListServices(ctx, &svcregv1.ListServicesRequest{Consistency: "stale", MinRevision: 1 << 40})
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for ts.inFlight.Count("127.0.0.4") < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := greedy.ListServices(context.Background(), &svcregv1.ListServicesRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a fifth call in flight: %v, want RESOURCE_EXHAUSTED", err)
	}
	code := get(t, httpFrom("127.0.0.4"), ts.base+"/v1/namespaces/default/services")
	if code != http.StatusTooManyRequests {
		t.Errorf("a REST request from the same client: %d, want 429", code)
	}
	other := svcregv1grpc.NewRegistryServiceClient(clientFrom(t, "127.0.0.5", ts.GRPCAddr()))
	if _, err := other.ListServices(context.Background(), &svcregv1.ListServicesRequest{}); err != nil {
		t.Errorf("another client: %v", err)
	}
	cancel()
	wg.Wait()
}
