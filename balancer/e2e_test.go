// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// testBackend is a real gRPC server on loopback that says who it is in a
// response header, after an optional delay.
type testBackend struct {
	testgrpc.UnimplementedTestServiceServer
	name  string
	delay time.Duration
	addr  string
	srv   *grpc.Server
	fail  atomic.Bool // answer UNAVAILABLE
}

func (b *testBackend) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	grpc.SetHeader(ctx, metadata.Pairs("backend", b.name))
	if b.fail.Load() {
		return nil, status.Error(codes.Unavailable, "failing on purpose")
	}
	if b.delay > 0 {
		time.Sleep(b.delay)
	}
	return &testgrpc.Empty{}, nil
}

func startBackends(t *testing.T, delays ...time.Duration) []*testBackend {
	t.Helper()
	var out []*testBackend
	for i, d := range delays {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b := &testBackend{name: fmt.Sprint("b", i), delay: d, addr: lis.Addr().String(), srv: grpc.NewServer()}
		testgrpc.RegisterTestServiceServer(b.srv, b)
		go b.srv.Serve(lis)
		t.Cleanup(b.srv.Stop)
		out = append(out, b)
	}
	return out
}

// dial connects through a manual resolver to the backends, with weights,
// and the ipvs policy configured by cfgJSON.
func dial(t *testing.T, backends []*testBackend, weights []uint32, cfgJSON string) testgrpc.TestServiceClient {
	t.Helper()
	r := manual.NewBuilderWithScheme(fmt.Sprintf("ipvs-e2e-%d", time.Now().UnixNano()))
	var eps []resolver.Endpoint
	for i, b := range backends {
		ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.addr}}}
		eps = append(eps, SetEndpointInfo(ep, EndpointInfo{Weight: weights[i]}))
	}
	r.InitialState(resolver.State{Endpoints: eps})
	conn, err := grpc.NewClient(r.Scheme()+":///backends", grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"ipvs":`+cfgJSON+`}]}`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := testgrpc.NewTestServiceClient(conn)
	// Wait until every backend is READY: the picker sees all of them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < len(backends) {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d backends reachable", len(seen), len(backends))
		}
		name, err := call(ctx, client, "")
		if err != nil {
			t.Fatal(err)
		}
		seen[name] = true
		if cfgJSON != `{"scheduler":"rr"}` {
			break // other schedulers may not visit every backend; settle briefly
		}
	}
	return client
}

func call(ctx context.Context, client testgrpc.TestServiceClient, user string) (string, error) {
	if user != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-user", user)
	}
	var md metadata.MD
	if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}, grpc.Header(&md), grpc.WaitForReady(true)); err != nil {
		return "", err
	}
	return md.Get("backend")[0], nil
}

func sequential(t *testing.T, client testgrpc.TestServiceClient, n int, user string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		name, err := call(t.Context(), client, user)
		if err != nil {
			t.Fatal(err)
		}
		got[name]++
	}
	return got
}

func TestE2ERR(t *testing.T) {
	backends := startBackends(t, 0, 0, 0)
	client := dial(t, backends, []uint32{1, 1, 1}, `{"scheduler":"rr"}`)
	got := sequential(t, client, 30, "")
	for _, b := range backends {
		if got[b.name] != 10 {
			t.Errorf("rr: %v, want 10 each", got)
		}
	}
}

func TestE2EWRRExactCounts(t *testing.T) {
	backends := startBackends(t, 0, 0, 0)
	client := dial(t, backends, []uint32{3, 2, 1}, `{"scheduler":"wrr"}`)
	waitAllReady(t, client, backends)
	got := sequential(t, client, 60, "")
	want := map[string]int{backends[0].name: 30, backends[1].name: 20, backends[2].name: 10}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("wrr: %v, want %v", got, want)
	}
}

// waitAllReady waits until RPCs reach every backend, so that the picker
// has them all. Probes run in parallel bursts with rotating keys, so that
// load-based and hashing schedulers spread them too. A wrr cycle restarts
// when the set changes; counting a whole number of cycles afterwards is
// exact from any starting point.
func waitAllReady(t testing.TB, client testgrpc.TestServiceClient, backends []*testBackend) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := 0; ; i++ {
		mu.Lock()
		done := len(seen) == len(backends)
		mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backends never all ready: %v", seen)
		}
		var wg sync.WaitGroup
		for j := range 2 * len(backends) {
			wg.Go(func() {
				name, err := call(context.Background(), client, fmt.Sprint("probe-", i, "-", j))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[name] = true
				mu.Unlock()
			})
		}
		wg.Wait()
	}
}

// TestE2EWLCSlowBackend: closed-loop clients; the backend 50x slower keeps
// more RPCs outstanding, so wlc sends it fewer.
func TestE2EWLCSlowBackend(t *testing.T) {
	backends := startBackends(t, 50*time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond)
	client := dial(t, backends, []uint32{1, 1, 1, 1}, `{"scheduler":"wlc"}`)
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 40 {
				name, err := call(t.Context(), client, "")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[name]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slow := got[backends[0].name]
	fast := (320 - slow) / 3
	// rr would give each 80; wlc keeps sending to the backends that finish.
	// (Under half, not less: under -race on a busy machine a "fast"
	// backend is a few milliseconds too, which narrows the gap.)
	if slow*2 > fast {
		t.Errorf("the slow backend got %d RPCs, the fast ones %d each: want under half", slow, fast)
	}
	t.Logf("wlc shares: %v", got)
}

func TestE2ESHHeaderStickiness(t *testing.T) {
	backends := startBackends(t, 0, 0, 0, 0)
	client := dial(t, backends, []uint32{1, 1, 1, 1}, `{"scheduler":"sh","hashKey":"x-user"}`)
	waitAllReady(t, client, backends)
	users := map[string]string{}
	for i := range 40 {
		user := fmt.Sprint("user-", i%8)
		name, err := call(t.Context(), client, user)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := users[user]; ok && prev != name {
			t.Fatalf("%s moved from %s to %s", user, prev, name)
		}
		users[user] = name
	}
	distinct := map[string]bool{}
	for _, name := range users {
		distinct[name] = true
	}
	if len(distinct) < 2 {
		t.Errorf("8 users all on one backend: %v", users)
	}
}

func TestE2EPersistence(t *testing.T) {
	backends := startBackends(t, 0, 0, 0)
	client := dial(t, backends, []uint32{1, 1, 1}, `{"scheduler":"rr","hashKey":"x-user","persistenceTimeout":"60s"}`)
	waitAllReady(t, client, backends)
	for _, user := range []string{"alice", "bob"} {
		if got := sequential(t, client, 9, user); len(got) != 1 {
			t.Errorf("%s's RPCs spread over %v", user, got)
		}
	}
}

// TestE2EOutlierEjection: with outlier detection (gRFC A50, failure
// percentage), a backend whose calls fail is ejected within an interval
// or two, and the client's RPCs stop failing.
func TestE2EOutlierEjection(t *testing.T) {
	backends := startBackends(t, 0, 0, 0, 0)
	client := dial(t, backends, []uint32{1, 1, 1, 1}, `{"scheduler":"rr","outlierDetection":{"interval":"1s","baseEjectionTime":"30s",
		"maxEjectionPercent":50,"failurePercentageEjection":{"threshold":50,"minimumHosts":3,"requestVolume":10}}}`)
	backends[3].fail.Store(true) // after dial, whose first RPC must succeed
	deadline := time.Now().Add(30 * time.Second)
	ok := 0
	for ok < 60 {
		if time.Now().After(deadline) {
			t.Fatalf("RPCs still fail after 30 s: the failing backend was not ejected")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := call(ctx, client, "")
		cancel()
		if err != nil {
			ok = 0
			time.Sleep(10 * time.Millisecond) // an interval is 1 s: no need to spin
			continue
		}
		ok++
	}
}

// TestE2EWarmUpIsBounded: an endpoint that never finishes connecting (a
// listener that accepts and says nothing) holds the first picker for
// warmUp only, not for its connect timeout (20 s).
func TestE2EWarmUpIsBounded(t *testing.T) {
	defer func(d time.Duration) { warmUp = d }(warmUp)
	warmUp = 200 * time.Millisecond
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	backends := append(startBackends(t, 0, 0), &testBackend{name: "silent", addr: silent.Addr().String()})
	// dial's first RPC (lc: it does not wait to see every backend) has 10 s.
	client := dial(t, backends, []uint32{1, 1, 1}, `{"scheduler":"lc"}`)
	got := map[string]int{}
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		name, err := call(ctx, client, "")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got[name]++
	}
	if got["silent"] != 0 || got["b0"] == 0 || got["b1"] == 0 {
		t.Errorf("20 RPCs went %v, want both answering backends and never the silent one", got)
	}
}
