// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package resolver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/lbrecorder"
	svcresolver "github.com/svcreg/svcreg/resolver"
	"github.com/svcreg/svcreg/server"
)

// recorders note when each address first reaches each ClientConn's LB
// policy: the end of the resolver's path (registry -> watch -> resolver
// -> ClientConn -> balancer).
var recorders = lbrecorder.Register("svcreg_propagation_recorder")

// BenchmarkPropagation measures the time from CreateInstance returning to
// the new endpoint reaching every ClientConn's LB policy, with 1, 100 and
// 1,000 ClientConns in one process sharing the resolver's watch.
//
//	go test -run XXX -bench BenchmarkPropagation -benchtime 20x ./resolver/
func BenchmarkPropagation(b *testing.B) {
	for _, conns := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { srv.Serve(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			admin, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close()
			reg := svcregv1grpc.NewRegistryServiceClient(admin)
			if _, err := reg.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
				Selector: map[string]string{"app": "web"}, Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}}}}); err != nil {
				b.Fatal(err)
			}

			first := recorders.Built()
			builder := svcresolver.NewBuilder()
			for range conns {
				cc, err := grpc.NewClient(fmt.Sprintf("svcreg://%s/web.shop:grpc", srv.GRPCAddr()),
					grpc.WithResolvers(builder), grpc.WithTransportCredentials(insecure.NewCredentials()),
					grpc.WithDisableServiceConfig(), grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"svcreg_propagation_recorder":{}}]}`))
				if err != nil {
					b.Fatal(err)
				}
				defer cc.Close()
				cc.Connect()
			}
			recs := recorders.Wait(b, first, conns)
			lbrecorder.WaitAll(b, recs, "")

			var lat []float64
			for i := 0; b.Loop(); i++ {
				port := int32(20000 + i)
				if _, err := reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
					Name: fmt.Sprint("i", i), Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": "web"},
					Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: port}}}}); err != nil {
					b.Fatal(err)
				}
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
		})
	}
}
