// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package propagation measures how fast an endpoint change reaches gRPC
// clients through svcreg's xDS server, beside the svcreg:/// resolver in
// the same run (docs/benchmarks.md). It is a package of its own because
// it replaces the ipvs policy with a recorder, which the xds package's
// own tests must not see.
package propagation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcxds "google.golang.org/grpc/xds"

	ipvsbalancer "github.com/svcreg/svcreg/balancer"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/lbrecorder"
	svcresolver "github.com/svcreg/svcreg/resolver"
	"github.com/svcreg/svcreg/server"
)

// recorders stand in for the ipvs policy (registered under its name,
// after its own init, so that xDS clients pick them first from the
// Cluster's policy list and the svcreg:/// resolver's service config
// names them too): each notes when each address first reaches its
// ClientConn, the end of either path.
var recorders = lbrecorder.Register(ipvsbalancer.Name)

// BenchmarkPropagation: the time from CreateInstance returning to the new
// endpoint reaching every ClientConn's LB policy, for N ClientConns each
// with its own xDS client (its own ADS stream) and for N svcreg:///
// ClientConns each with its own watch, in one run; "endpoints" is how many the service has
// already (a SotW ClusterLoadAssignment carries them all at every change).
//
//	go test -run '^$' -bench BenchmarkPropagation -benchtime 20x ./internal/xds/propagation/
func BenchmarkPropagation(b *testing.B) {
	for _, c := range []struct{ conns, endpoints int }{{1, 0}, {100, 0}, {1000, 0}, {100, 100}} {
		for _, path := range []string{"xds", "svcreg"} {
			b.Run(fmt.Sprintf("path=%s/conns=%d/endpoints=%d", path, c.conns, c.endpoints), func(b *testing.B) {
				benchPropagation(b, path, c.conns, c.endpoints)
			})
		}
	}
}

func startServer(b *testing.B) (*server.Server, svcregv1grpc.RegistryServiceClient) {
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	admin, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Close() })
	reg := svcregv1grpc.NewRegistryServiceClient(admin)
	if _, err := reg.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
		Selector: map[string]string{"app": "web"}, Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}}}}); err != nil {
		b.Fatal(err)
	}
	return srv, reg
}

func createInstance(b *testing.B, reg svcregv1grpc.RegistryServiceClient, name string, port int32) {
	if _, err := reg.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
		Name: name, Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": "web"},
		Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: port}}}}); err != nil {
		b.Fatal(err)
	}
}

func benchPropagation(b *testing.B, path string, conns, endpoints int) {
	srv, reg := startServer(b)
	for i := range endpoints {
		createInstance(b, reg, fmt.Sprint("base-", i), int32(10000+i))
	}
	// One endpoint before the clients: an xDS client reports no assignment
	// without one.
	createInstance(b, reg, "first", 9999)
	first := recorders.Built()
	// Each ClientConn has a stream of its own on either path, as clients in
	// separate processes would: an xDS client per ClientConn (grpc-go's
	// xDS resolver makes one per channel), a resolver builder (its own
	// registry connection and watch) per svcreg:/// ClientConn.
	target, opts := fmt.Sprintf("svcreg://%s/web.shop:grpc", srv.GRPCAddr()), func() []grpc.DialOption {
		return []grpc.DialOption{grpc.WithResolvers(svcresolver.NewBuilder()), grpc.WithDisableServiceConfig(),
			grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"` + ipvsbalancer.Name + `":{}}]}`)}
	}
	if path == "xds" {
		builder, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(fmt.Sprintf(
			`{"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}], "node": {"id": "bench", "locality": {}}}`,
			srv.GRPCAddr())))
		if err != nil {
			b.Fatal(err)
		}
		target, opts = "xds:///web.shop:443", func() []grpc.DialOption { return []grpc.DialOption{grpc.WithResolvers(builder)} }
	}
	for range conns {
		cc, err := grpc.NewClient(target, append(opts(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cc.Close() })
		cc.Connect()
	}
	recs := recorders.Wait(b, first, conns)
	lbrecorder.WaitAll(b, recs, "127.0.0.1:9999")

	var lat []float64
	for i := 0; b.Loop(); i++ {
		port := int32(20000 + i)
		createInstance(b, reg, fmt.Sprint("i", i), port)
		acked := time.Now()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		lbrecorder.WaitAll(b, recs, addr)
		for _, r := range recs {
			at, _ := r.At(addr)
			lat = append(lat, float64(at.Sub(acked))/1e6)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
}

// BenchmarkFanOut: the server's part alone: the time from CreateInstance
// returning to each of N bare ADS streams (one shared connection, no
// gRPC client behind them, so no client-side parsing or policy) receiving
// the new ClusterLoadAssignment.
//
//	go test -run '^$' -bench BenchmarkFanOut -benchtime 20x ./internal/xds/propagation/
func BenchmarkFanOut(b *testing.B) {
	for _, c := range []struct{ streams, endpoints int }{{1, 0}, {100, 0}, {1000, 0}, {100, 100}, {1000, 1000}} {
		b.Run(fmt.Sprintf("streams=%d/endpoints=%d", c.streams, c.endpoints), func(b *testing.B) {
			benchFanOut(b, c.streams, c.endpoints)
		})
	}
}

func benchFanOut(b *testing.B, streams, endpoints int) {
	srv, reg := startServer(b)
	for i := range endpoints {
		createInstance(b, reg, fmt.Sprint("base-", i), int32(10000+i))
	}
	createInstance(b, reg, "first", 9999)
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	got := make(chan time.Time, streams*4)
	for range streams {
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: []string{"web.shop:443"}}); err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				resp, err := st.Recv()
				if err != nil {
					return
				}
				got <- time.Now()
				st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: []string{"web.shop:443"},
					VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()})
			}
		}()
	}
	for range streams { // the first response of each
		<-got
	}
	var lat []float64
	for i := 0; b.Loop(); i++ {
		createInstance(b, reg, fmt.Sprint("i", i), int32(20000+i))
		acked := time.Now()
		for range streams {
			select {
			case at := <-got:
				lat = append(lat, float64(at.Sub(acked))/1e6)
			case <-time.After(60 * time.Second):
				b.Fatal("a stream never got the change")
			}
		}
	}
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
}

// BenchmarkStreamMemory: the heap one ADS stream costs, both ends in this
// process over one shared connection, each subscribed to one service's
// Listener, Cluster and ClusterLoadAssignment.
//
//	go test -run '^$' -bench BenchmarkStreamMemory -benchtime 1x ./internal/xds/propagation/
func BenchmarkStreamMemory(b *testing.B) {
	const streams = 1000
	srv, reg := startServer(b)
	for i := range 10 {
		createInstance(b, reg, fmt.Sprint("e", i), int32(10000+i))
	}
	cc, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(cc)
	before := heap()
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for range streams {
			st, err := ads.StreamAggregatedResources(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, typ := range []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.EndpointType} {
				if err := st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: typ, ResourceNames: []string{"web.shop:443"}}); err != nil {
					b.Fatal(err)
				}
				resp, err := st.Recv()
				if err != nil {
					b.Fatal(err)
				}
				if err := st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: typ, ResourceNames: []string{"web.shop:443"},
					VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(heap()-before)/streams/1024, "KiB/stream")
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
