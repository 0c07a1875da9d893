// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/svcreg/svcreg/client"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
	"github.com/svcreg/svcreg/internal/reservedports"
	"github.com/svcreg/svcreg/server"
)

// registry is an in-process svcreg server on loopback that can be stopped
// and started again on the same port.
type registry struct {
	t      *testing.T
	addr   string
	clock  clock.Clock
	srv    *server.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func startRegistry(t *testing.T, clock clock.Clock) *registry {
	t.Helper()
	r := &registry{t: t, addr: "127.0.0.1:0", clock: clock}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *registry) start() {
	r.t.Helper()
	srv, err := server.New(server.Config{GRPCAddr: r.addr, HTTPAddr: "-", DNSAddr: "-", Clock: r.clock, ShutdownTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		r.t.Fatal(err)
	}
	r.srv, r.addr = srv, srv.GRPCAddr()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() { srv.Serve(ctx); close(r.done) }()
}

func (r *registry) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// backend is a gRPC server on loopback that answers with its name.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	name string
	port int
	srv  *grpc.Server
	hits atomic.Int64
}

func (b *backend) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	b.hits.Add(1)
	grpc.SetHeader(ctx, metadata.Pairs("backend", b.name))
	return &testgrpc.Empty{}, nil
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, port: lis.Addr().(*net.TCPAddr).Port, srv: grpc.NewServer()}
	testgrpc.RegisterTestServiceServer(b.srv, b)
	go b.srv.Serve(lis)
	t.Cleanup(b.srv.Stop)
	return b
}

func (b *backend) instance() *svcregv1.Instance {
	return &svcregv1.Instance{Name: b.name, Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": "web"},
		Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: int32(b.port)}}}
}

func newClient(t *testing.T, r *registry) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func createService(t *testing.T, c *client.Client, scheduler string) {
	t.Helper()
	_, err := c.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: "web", Namespace: "shop", Selector: map[string]string{"app": "web"}, Scheduler: scheduler,
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}}}})
	if err != nil {
		t.Fatal(err)
	}
}

func register(t *testing.T, c *client.Client, b *backend) *client.Registration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := c.Register(ctx, b.instance(), 3*time.Second, client.WithDrainGrace(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func dial(t *testing.T, r *registry) testgrpc.TestServiceClient {
	t.Helper()
	conn, err := client.Dial(fmt.Sprintf("svcreg://%s/web.shop:grpc", r.addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testgrpc.NewTestServiceClient(conn)
}

func call(ctx context.Context, c testgrpc.TestServiceClient, opts ...grpc.CallOption) (string, error) {
	var md metadata.MD
	if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}, append(opts, grpc.Header(&md))...); err != nil {
		return "", err
	}
	return md.Get("backend")[0], nil
}

// load sends RPCs at about rate per second until stopped, counting
// failures and which backends answered.
type load struct {
	mu       sync.Mutex
	hits     map[string]int
	failures []error
	stop     chan struct{}
	done     chan struct{}
}

func startLoad(c testgrpc.TestServiceClient, rate int) *load {
	l := &load{hits: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		var wg sync.WaitGroup
		for {
			select {
			case <-l.stop:
				wg.Wait()
				return
			case <-tick.C:
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				name, err := call(ctx, c) // fail-fast: any failure counts
				l.mu.Lock()
				defer l.mu.Unlock()
				if err != nil {
					l.failures = append(l.failures, err)
					return
				}
				l.hits[name]++
			})
		}
	}()
	return l
}

// waitMore waits until n more RPCs succeeded: time passes by the load's
// own progress, never by a sleep.
func (l *load) waitMore(t *testing.T, n int) {
	t.Helper()
	total := func() int {
		sum := 0
		for _, v := range l.snapshot() {
			sum += v
		}
		return sum
	}
	want := total() + n
	eventually(t, 30*time.Second, fmt.Sprintf("%d more RPCs", n), func() bool { return total() >= want })
}

func (l *load) snapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.hits {
		out[k] = v
	}
	return out
}

func (l *load) finish(t *testing.T) map[string]int {
	t.Helper()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Errorf("%d failed RPCs, first: %v", len(l.failures), l.failures[0])
	}
	return l.hits
}

// eventually polls cond every 10 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestJoinAndDrain(t *testing.T) {
	r := startRegistry(t, nil)
	c := newClient(t, r)
	createService(t, c, "rr")
	var regs []*client.Registration
	var backends []*backend
	for i := range 3 {
		b := startBackend(t, fmt.Sprint("b", i))
		backends = append(backends, b)
		regs = append(regs, register(t, c, b))
	}
	conn := dial(t, r)
	l := startLoad(conn, 200)
	eventually(t, 5*time.Second, "RPCs reach all three", func() bool { return len(l.snapshot()) == 3 })

	// A fourth gets RPCs within a second of registering.
	b3 := startBackend(t, "b3")
	register(t, c, b3)
	took := eventually(t, time.Second, "the new backend receives RPCs", func() bool { return b3.hits.Load() > 0 })
	t.Logf("new backend's first RPC %v after registration", took)

	// One leaves through Close: it drains and stops receiving, and no RPC
	// fails.
	if err := regs[0].Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := backends[0].hits.Load()
	l.waitMore(t, 100) // the load goes on without it
	backends[0].srv.GracefulStop()
	if after := backends[0].hits.Load(); after != before {
		t.Errorf("the drained backend got %d RPCs after Close", after-before)
	}
	l.waitMore(t, 50)
	hits := l.finish(t)
	t.Logf("hits %v", hits)
}

func TestRollingReplacement(t *testing.T) {
	r := startRegistry(t, nil)
	c := newClient(t, r)
	createService(t, c, "wlc")
	type live struct {
		b   *backend
		reg *client.Registration
	}
	var fleet []live
	for i := range 3 {
		b := startBackend(t, fmt.Sprint("old", i))
		fleet = append(fleet, live{b, register(t, c, b)})
	}
	conn := dial(t, r)
	l := startLoad(conn, 200)
	eventually(t, 5*time.Second, "RPCs flow", func() bool { return len(l.snapshot()) == 3 })
	for i := range fleet {
		nb := startBackend(t, fmt.Sprint("new", i))
		nreg := register(t, c, nb)
		eventually(t, 2*time.Second, "the replacement takes RPCs", func() bool { return nb.hits.Load() > 0 })
		old := fleet[i]
		if err := old.reg.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		old.b.srv.GracefulStop()
		fleet[i] = live{nb, nreg}
	}
	l.waitMore(t, 50)
	hits := l.finish(t)
	for i := range 3 {
		if hits[fmt.Sprint("new", i)] == 0 {
			t.Errorf("new%d got no RPCs: %v", i, hits)
		}
	}
}

// TestRegistryRestart stops the registry under load: RPCs to the existing
// backends go on. The registry comes back empty (no durability yet); an
// operator recreates the service, the SDK re-registers the instances, and
// the resolver converges.
func TestRegistryRestart(t *testing.T) {
	r := startRegistry(t, nil)
	c := newClient(t, r)
	createService(t, c, "rr")
	for i := range 2 {
		register(t, c, startBackend(t, fmt.Sprint("b", i)))
	}
	conn := dial(t, r)
	l := startLoad(conn, 200)
	eventually(t, 5*time.Second, "RPCs flow", func() bool { return len(l.snapshot()) == 2 })

	r.stop()
	l.waitMore(t, 100) // RPCs go on while the registry is down
	r.start()          // same port, empty
	createService(t, newClient(t, r), "rr")
	eventually(t, 5*time.Second, "the SDK registers again", func() bool {
		resp, err := c.ListEndpoints(context.Background(), &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "web"})
		return err == nil && len(resp.GetEndpoints()) == 2
	})
	// The resolver converges: a third backend, known only to the new
	// registry, gets RPCs.
	b2 := startBackend(t, "b2")
	register(t, c, b2)
	eventually(t, 5*time.Second, "the resolver follows the restarted registry", func() bool { return b2.hits.Load() > 0 })
	l.finish(t)
}

// TestKilledBackendExpires: a backend that dies without deregistering
// disappears when its lease lapses (a fake registry clock moves the TTL).
func TestKilledBackendExpires(t *testing.T) {
	clock := clocktest.New()
	r := startRegistry(t, clock)
	c := newClient(t, r)
	createService(t, c, "rr")
	steady := startBackend(t, "steady")
	if _, err := c.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: steady.instance()}); err != nil {
		t.Fatal(err)
	}
	doomed := startBackend(t, "doomed")
	reg := register(t, c, doomed)
	conn := dial(t, r)
	eventually(t, 5*time.Second, "both get RPCs", func() bool {
		call(context.Background(), conn)
		return doomed.hits.Load() > 0 && steady.hits.Load() > 0
	})
	reg.Abandon() // the process dies: no renewals, no deregistration
	doomed.srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clock.BlockUntilContext(ctx, 1) // the lease loop's timer
	clock.Advance(3*time.Second + time.Millisecond)
	took := eventually(t, time.Second, "clients drop the dead backend", func() bool {
		resp, err := c.ListEndpoints(context.Background(), &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "web"})
		return err == nil && len(resp.GetEndpoints()) == 1
	})
	for range 20 {
		name, err := call(context.Background(), conn)
		if err != nil || name != "steady" {
			t.Fatalf("after expiry: %q, %v", name, err)
		}
	}
	t.Logf("expiry reached the registry %v after the TTL", took)
}

func TestServiceDeletedAndRegistryDown(t *testing.T) {
	r := startRegistry(t, nil)
	c := newClient(t, r)
	createService(t, c, "rr")
	b := startBackend(t, "b")
	register(t, c, b)
	conn := dial(t, r)
	if _, err := call(context.Background(), conn, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteService(context.Background(), &svcregv1.DeleteServiceRequest{Namespace: "shop", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "RPCs fail with the resolver's error", func() bool {
		_, err := call(context.Background(), conn)
		return status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "service web.shop not found")
	})

	// A registry that is not there: fail-fast RPCs fail with a clear
	// UNAVAILABLE; wait-for-ready ones wait for it.
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := lis.Addr().String()
	lis.Close()
	early, err := client.Dial("svcreg://" + addr + "/web.shop:grpc")
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	_, err = call(context.Background(), testgrpc.NewTestServiceClient(early))
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), addr) {
		t.Errorf("fail-fast RPC without a registry: %v", err)
	}
	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := call(ctx, testgrpc.NewTestServiceClient(early), grpc.WaitForReady(true))
		waited <- err
	}()
	late := &registry{t: t, addr: addr}
	late.start()
	defer late.stop()
	lc := newClient(t, late)
	createService(t, lc, "rr")
	register(t, lc, b)
	if err := <-waited; err != nil {
		t.Errorf("wait-for-ready RPC: %v", err)
	}
}

func TestMalformedTarget(t *testing.T) {
	conn, err := client.Dial("svcreg:///Not_A_Service.shop:grpc")
	if err == nil {
		defer conn.Close()
		_, err = call(context.Background(), testgrpc.NewTestServiceClient(conn))
	}
	if err == nil || !strings.Contains(err.Error(), "bad target") {
		t.Errorf("err = %v, want a bad target error", err)
	}
}

// TestRegisterBeforeTheRegistry: a backend that starts before its
// registry logs each failed attempt and registers soon after the
// registry comes up on its address.
func TestRegisterBeforeTheRegistry(t *testing.T) {
	// A free port, kept free for the registry (reserved as root).
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	reservedports.Reserve(t, addr)

	c, err := client.New(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	logs := &syncBuffer{}
	b := startBackend(t, "early")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a bound, not a wait
	defer cancel()
	registered := make(chan error, 1)
	go func() {
		reg, err := c.Register(ctx, b.instance(), 3*time.Second, client.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
			client.WithAttemptTimeout(time.Second))
		if err == nil {
			defer reg.Abandon()
		}
		registered <- err
	}()
	// The first failed attempt is logged, naming the registry.
	eventually(t, 30*time.Second, "a logged failed attempt", func() bool {
		return strings.Contains(logs.String(), "registering failed; retrying") && strings.Contains(logs.String(), addr)
	})
	r := &registry{t: t, addr: addr}
	r.start()
	t.Cleanup(r.stop)
	createService(t, newClient(t, r), "rr")
	if err := <-registered; err != nil {
		t.Fatalf("Register: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "svcreg: registered") {
		t.Errorf("no line says the registration succeeded:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFirstRPCsAfterDialSpread: the first 100 RPCs right after Dial
// spread over all three backends (rr: 34, 33, 33), not to whichever
// connected first: the first picker waits for every backend to connect.
func TestFirstRPCsAfterDialSpread(t *testing.T) {
	r := startRegistry(t, nil)
	c := newClient(t, r)
	createService(t, c, "rr")
	for i := range 3 {
		register(t, c, startBackend(t, fmt.Sprint("b", i)))
	}
	conn := dial(t, r)
	got := map[string]int{}
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		name, err := call(ctx, conn, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got[name]++
	}
	for i := range 3 {
		if n := got[fmt.Sprint("b", i)]; n < 33 {
			t.Errorf("the first 100 RPCs went %v, want 33 or 34 each", got)
			break
		}
	}
}

// TestClientRevision: the client keeps the revision of its own last
// write, which its Dial's watches ask the server to hold (read-your-
// writes on a follower: server/watch_test.go TestWatchMinRevision), so
// an RPC right after Register and Dial finds the backend.
func TestClientRevision(t *testing.T) {
	r := startRegistry(t, nil)
	c := newClient(t, r)
	createService(t, c, "rr")
	reg := register(t, c, startBackend(t, "b0"))
	if got, want := c.Revision(), reg.Instance().GetResourceVersion(); got != want || got == 0 {
		t.Fatalf("Revision() = %d after registering at %d", got, want)
	}
	conn, err := c.Dial("svcreg:///web.shop:grpc")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := call(ctx, testgrpc.NewTestServiceClient(conn)); err != nil {
		t.Fatalf("the first RPC after Register and Dial: %v", err)
	}
}
