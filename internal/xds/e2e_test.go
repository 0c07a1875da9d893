// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	grpcxds "google.golang.org/grpc/xds" // the xDS resolver and policies, as any xds:/// client has them
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/svcreg/svcreg/client"
	greeterv1 "github.com/svcreg/svcreg/gen/greeter/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/reservedports"
	"github.com/svcreg/svcreg/server"
)

// registry is a real server on loopback and a client of it.
type registry struct {
	srv  *server.Server
	reg  *client.Client
	stop func() // stops the server (once)
}

func startRegistry(t *testing.T) *registry {
	t.Helper()
	return startRegistryWith(t, server.Config{GRPCAddr: "127.0.0.1:0"})
}

// startRegistryWith starts a server with cfg (no REST, no DNS, quiet).
func startRegistryWith(t *testing.T, cfg server.Config) *registry {
	t.Helper()
	cfg.HTTPAddr, cfg.DNSAddr, cfg.Logger = "-", "-", slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx); close(served) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-served }) }
	t.Cleanup(stop)
	reg, err := client.New(ctx, srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return &registry{srv: srv, reg: reg, stop: stop}
}

// dialXDS is a gRPC client of target through an xDS resolver whose
// bootstrap names the registry as its only xDS server.
func (r *registry) dialXDS(t *testing.T, target string) greeterv1.GreeterServiceClient {
	return r.dialXDSIn(t, target, "")
}

// dialXDSIn is dialXDS from a client whose bootstrap puts it in zone.
func (r *registry) dialXDSIn(t *testing.T, target, zone string) greeterv1.GreeterServiceClient {
	t.Helper()
	bootstrap := fmt.Sprintf(`{"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": "e2e-%s-%s", "locality": {"zone": %q}}}`, r.srv.GRPCAddr(), t.Name(), zone, zone)
	builder, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(builder))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return greeterv1.NewGreeterServiceClient(cc)
}

// backend is a greeter that answers with its instance name.
type backend struct {
	greeterv1.UnimplementedGreeterServiceServer
	name string
	port int
	fail atomic.Bool // answer UNAVAILABLE
}

func (b *backend) Greet(context.Context, *greeterv1.GreetRequest) (*greeterv1.GreetResponse, error) {
	if b.fail.Load() {
		return nil, status.Error(codes.Unavailable, "failing on purpose")
	}
	return &greeterv1.GreetResponse{Message: "hello", Instance: b.name}, nil
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, port: lis.Addr().(*net.TCPAddr).Port}
	g := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(g, b)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return b
}

func (r *registry) createService(t *testing.T, name, scheduler string) {
	t.Helper()
	_, err := r.reg.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: name, Namespace: "shop", Selector: map[string]string{"app": name}, Scheduler: scheduler,
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 50051, TargetPort: "grpc"}}}})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *registry) register(t *testing.T, app string, b *backend, weight uint32) {
	t.Helper()
	_, err := r.reg.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
		Name: b.name, Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": app}, Weight: &weight,
		Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: int32(b.port)}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// spread makes n RPCs and counts the answers by instance; any failure
// fails the test.
func spread(t *testing.T, c greeterv1.GreeterServiceClient, n int, opts ...grpc.CallOption) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := c.Greet(ctx, &greeterv1.GreetRequest{Name: "x"}, opts...)
		cancel()
		if err != nil {
			t.Fatalf("RPC through xDS: %v", err)
		}
		got[resp.GetInstance()]++
	}
	return got
}

// until makes RPCs until the answers' counts satisfy ok (20 s at most).
// They wait for a ready backend: a client that has just subscribed may
// hold, for a moment, an assignment the registry's feed built before the
// test's last write (an empty one fails RPCs fast, as gRPC should);
// spread is the check that no RPC fails.
func until(t *testing.T, c greeterv1.GreeterServiceClient, what string, ok func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := spread(t, c, 30, grpc.WaitForReady(true))
		if ok(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the last 30 RPCs went %v", what, got)
		}
	}
}

// TestXDSClient is grpc-go's own xDS client (xds:///) against the
// registry's ADS: RPCs spread over the service's backends; an added
// instance gets RPCs, a removed or drained one stops getting them, and a
// client making RPCs all along sees none fail.
func TestXDSClient(t *testing.T) {
	r := startRegistry(t)
	r.createService(t, "greeter", "rr")
	bs := []*backend{startBackend(t, "greeter-1"), startBackend(t, "greeter-2"), startBackend(t, "greeter-3")}
	for _, b := range bs {
		r.register(t, "greeter", b, 1)
	}
	c := r.dialXDS(t, "xds:///greeter.shop:50051")
	until(t, c, "all three backends", func(got map[string]int) bool { return len(got) == 3 })

	// A second client makes RPCs all along: none may fail.
	var failed, made atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := c.Greet(ctx, &greeterv1.GreetRequest{}); err != nil {
				failed.Add(1)
				t.Logf("an RPC failed: %v", err)
			}
			made.Add(1)
			cancel()
		}
	})

	got := spread(t, c, 600)
	for _, b := range bs {
		// wrr_locality picks localities at random by weight: under 100 of
		// 600 at p = 1/3 is 12 standard deviations out.
		if got[b.name] < 100 {
			t.Errorf("600 RPCs went %v, want about 200 each", got)
		}
	}

	added := startBackend(t, "greeter-4")
	r.register(t, "greeter", added, 1)
	until(t, c, "the added instance", func(got map[string]int) bool { return got["greeter-4"] > 0 })

	if _, err := r.reg.DeleteInstance(context.Background(), &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: "greeter-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.reg.UpdateInstance(context.Background(), &svcregv1.UpdateInstanceRequest{
		Instance:   &svcregv1.Instance{Namespace: "shop", Name: "greeter-3", Terminating: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"terminating"}}}); err != nil {
		t.Fatal(err)
	}
	until(t, c, "the removed and the drained instance out", func(got map[string]int) bool {
		return got["greeter-2"] == 0 && got["greeter-3"] == 0
	})
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d RPCs failed while instances came and went", failed.Load(), made.Load())
	}
}

// TestXDSClientOutlivesTheRegistry: with the registry gone, a client goes
// on with the resources it has: every RPC still succeeds, spread as
// before.
func TestXDSClientOutlivesTheRegistry(t *testing.T) {
	r := startRegistry(t)
	r.createService(t, "steady", "rr")
	for _, name := range []string{"steady-1", "steady-2"} {
		r.register(t, "steady", startBackend(t, name), 1)
	}
	c := r.dialXDS(t, "xds:///steady.shop:50051")
	until(t, c, "both backends", func(got map[string]int) bool { return len(got) == 2 })
	r.stop()
	got := spread(t, c, 200) // fails the test on any failed RPC
	if len(got) != 2 {
		t.Errorf("with the registry gone, 200 RPCs went %v, want both backends", got)
	}
}

// TestXDSHashStickiness: sh with a hash_key sends every RPC of one key to
// one backend, and different keys to different backends.
func TestXDSHashStickiness(t *testing.T) {
	r := startRegistry(t)
	if _, err := r.reg.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: "sticky", Namespace: "shop", Selector: map[string]string{"app": "sticky"}, Scheduler: "sh",
		SchedulerOptions: &svcregv1.SchedulerOptions{HashKey: "x-user"},
		Ports:            []*svcregv1.ServicePort{{Name: "grpc", Port: 50051, TargetPort: "grpc"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sticky-1", "sticky-2", "sticky-3"} {
		r.register(t, "sticky", startBackend(t, name), 1)
	}
	c := r.dialXDS(t, "xds:///sticky.shop:50051")
	until(t, c, "a first answer", func(got map[string]int) bool { return len(got) > 0 })
	// Wait until all three backends are in the client's picker: a key's
	// backend may change while they arrive.
	users := func(n int) map[string]string {
		owner := map[string]string{}
		for u := range n {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "x-user", fmt.Sprint("user-", u))
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := c.Greet(ctx, &greeterv1.GreetRequest{})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			owner[fmt.Sprint("user-", u)] = resp.GetInstance()
		}
		return owner
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		seen := map[string]bool{}
		for _, inst := range users(60) {
			seen[inst] = true
		}
		if len(seen) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 keys went to %v, want all three backends", seen)
		}
	}
	first := users(60)
	for range 3 {
		for u, inst := range users(60) {
			if first[u] != inst {
				t.Fatalf("%s went to %s, then to %s", u, first[u], inst)
			}
		}
	}
}

// TestXDSClientAcrossARestart: a durable registry restarted on its
// address: the client keeps answering from what it has meanwhile, then
// resubscribes, and a change made after the restart reaches it.
func TestXDSClientAcrossARestart(t *testing.T) {
	cfg := server.Config{GRPCAddr: "127.0.0.1:0", DataDir: t.TempDir(), NodeID: "n1",
		Security: server.Security{Auth: server.AuthOff}}
	r := startRegistryWith(t, cfg)
	reservedports.Reserve(t, r.srv.GRPCAddr()) // the restart binds it again
	r.createService(t, "durable", "rr")
	r.register(t, "durable", startBackend(t, "durable-1"), 1)
	c := r.dialXDS(t, "xds:///durable.shop:50051")
	until(t, c, "the first backend", func(got map[string]int) bool { return got["durable-1"] > 0 })
	r.stop()
	spread(t, c, 50) // while the registry is down: fails the test on any failed RPC
	// The same address again.
	cfg.GRPCAddr = r.srv.GRPCAddr()
	r2 := startRegistryWith(t, cfg)
	r2.register(t, "durable", startBackend(t, "durable-2"), 1)
	until(t, c, "an instance registered after the restart", func(got map[string]int) bool { return got["durable-2"] > 0 })
}

// TestXDSWeights: wrr's 3:1 weights reach a client that has only gRPC's
// own policies, within 5%.
func TestXDSWeights(t *testing.T) {
	r := startRegistry(t)
	r.createService(t, "weighted", "wrr")
	heavy, light := startBackend(t, "heavy"), startBackend(t, "light")
	r.register(t, "weighted", heavy, 3)
	r.register(t, "weighted", light, 1)
	c := r.dialXDS(t, "xds:///weighted.shop:50051")
	until(t, c, "both backends", func(got map[string]int) bool { return len(got) == 2 })
	const n = 4000
	got := spread(t, c, n)
	// 0.75 +- 5% is 0.7125-0.7875: 5.5 standard deviations at n = 4000.
	if share := float64(got["heavy"]) / n; share < 0.7125 || share > 0.7875 {
		t.Errorf("weights 3:1 over %d RPCs went %v (%.3f to the heavy one), want 0.75 within 5%%", n, got, share)
	}
}

// TestXDSNACK: a client that rejects a response is not sent the same
// resources again in a loop, gets the next version when the resource
// changes, and ListXDSClients shows its node, what it accepted, and what
// it rejected and why.
func TestXDSNACK(t *testing.T) {
	r := startRegistry(t)
	r.createService(t, "nacked", "rr")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, err := grpc.NewClient(r.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const name = "nacked.shop:50051"
	node := &corev3.Node{Id: "picky-client", UserAgentName: "test"}
	ask := func(version, nonce string, nack bool) {
		t.Helper()
		req := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType, ResourceNames: []string{name}, VersionInfo: version, ResponseNonce: nonce}
		if nack {
			req.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: "no policy in the list is supported"}
		}
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	ask("", "", false)
	first, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	ask("", first.GetNonce(), true) // rejects its very first response
	// The next response comes only with a change, and is that change.
	if _, err := r.reg.UpdateService(ctx, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Namespace: "shop", Name: "nacked", Scheduler: "lc"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"scheduler"}}}); err != nil {
		t.Fatal(err)
	}
	next, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if next.GetVersionInfo() == first.GetVersionInfo() {
		t.Fatalf("the rejected version %s was sent again", first.GetVersionInfo())
	}
	clients, err := svcregv1grpc.NewXDSServiceClient(cc).ListXDSClients(ctx, &svcregv1.ListXDSClientsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range clients.GetClients() {
		if c.GetNodeId() != "picky-client" {
			continue
		}
		found = true
		for _, ty := range c.GetTypes() {
			if ty.GetTypeUrl() == resourcev3.ClusterType && (ty.GetNackReason() != "no policy in the list is supported" || ty.GetNackedVersion() != first.GetVersionInfo() || ty.GetSentVersion() != next.GetVersionInfo()) {
				t.Errorf("the client's cluster state: %v", ty)
			}
		}
	}
	if !found {
		t.Fatalf("ListXDSClients does not show the client: %v", clients)
	}
	ask(next.GetVersionInfo(), next.GetNonce(), false) // and accepts the next
	waitAcked(t, cc, next.GetVersionInfo())
}

// waitAcked waits until the server has the client's ACK of version.
func waitAcked(t *testing.T, cc *grpc.ClientConn, version string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		clients, err := svcregv1grpc.NewXDSServiceClient(cc).ListXDSClients(context.Background(), &svcregv1.ListXDSClientsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range clients.GetClients() {
			for _, ty := range c.GetTypes() {
				if c.GetNodeId() == "picky-client" && ty.GetAckedVersion() == version && ty.GetNackReason() == "" {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the ACK of %s never showed", version)
}

// TestXDSZones: grpc-go xDS clients in two zones, a service that prefers
// the same zone: each client's RPCs stay in its zone, and when zone a
// drains, its client fails over to zone b (gRFC A27 priorities).
func TestXDSZones(t *testing.T) {
	r := startRegistry(t)
	ctx := context.Background()
	if _, err := r.reg.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: "zoned", Namespace: "shop", Selector: map[string]string{"app": "zoned"},
		TrafficDistribution: svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_ZONE,
		Ports:               []*svcregv1.ServicePort{{Name: "grpc", Port: 50051, TargetPort: "grpc"}}}}); err != nil {
		t.Fatal(err)
	}
	zoneOf := map[string]string{"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
	for _, name := range []string{"a1", "a2", "b1", "b2"} {
		b := startBackend(t, name)
		if _, err := r.reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
			Name: name, Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": "zoned"}, Zone: zoneOf[name],
			Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: int32(b.port)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	only := func(zone string) func(map[string]int) bool {
		return func(got map[string]int) bool {
			for inst := range got {
				if zoneOf[inst] != zone {
					return false
				}
			}
			return len(got) == 2
		}
	}
	inA := r.dialXDSIn(t, "xds:///zoned.shop:50051", "a")
	inB := r.dialXDSIn(t, "xds:///zoned.shop:50051", "b")
	until(t, inA, "the zone-a client stays in zone a", only("a"))
	until(t, inB, "the zone-b client stays in zone b", only("b"))

	for _, name := range []string{"a1", "a2"} {
		if _, err := r.reg.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{
			Name: name, Namespace: "shop", Ready: proto.Bool(false)}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ready"}}}); err != nil {
			t.Fatal(err)
		}
	}
	until(t, inA, "the zone-a client fails over to zone b when zone a drains", only("b"))
}

// TestXDSOutlierDetection: a service's outlier detection reaches grpc-go's
// xDS client as the Cluster's outlier_detection (gRFC A50): the backend
// whose calls fail is ejected and the client's RPCs stop failing.
func TestXDSOutlierDetection(t *testing.T) {
	r := startRegistry(t)
	ctx := context.Background()
	if _, err := r.reg.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: "flaky", Namespace: "shop", Selector: map[string]string{"app": "flaky"},
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 50051, TargetPort: "grpc"}},
		OutlierDetection: &svcregv1.OutlierDetection{IntervalSeconds: 1, MaxEjectionPercent: 50,
			FailurePercentageEjection: &svcregv1.FailurePercentageEjection{Threshold: 50, MinimumHosts: 3, RequestVolume: 10}}}}); err != nil {
		t.Fatal(err)
	}
	var failing *backend
	for i := range 4 {
		b := startBackend(t, fmt.Sprint("flaky-", i))
		r.register(t, "flaky", b, 1)
		failing = b
	}
	c := r.dialXDS(t, "xds:///flaky.shop:50051")
	until(t, c, "every backend", func(got map[string]int) bool { return len(got) == 4 })
	failing.fail.Store(true)
	deadline := time.Now().Add(30 * time.Second)
	for ok := 0; ok < 60; {
		if time.Now().After(deadline) {
			t.Fatal("RPCs still fail after 30 s: the xDS client did not eject the failing backend")
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.Greet(cctx, &greeterv1.GreetRequest{Name: "x"})
		cancel()
		if err != nil {
			ok = 0
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ok++
	}
}
