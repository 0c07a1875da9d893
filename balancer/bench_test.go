// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	_ "google.golang.org/grpc/balancer/leastrequest"
	_ "google.golang.org/grpc/balancer/weightedroundrobin"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// benchSizes are the backend counts of the pick benchmarks.
var benchSizes = []int{10, 100, 1000, 10000}

// benchInfos are pick inputs: 1024 request keys, so the hashing and table
// schedulers look up realistic, varied keys (all hits once warm).
func benchInfos(header bool) []balancer.PickInfo {
	infos := make([]balancer.PickInfo, 1024)
	for i := range infos {
		ctx := WithRequestKey(context.Background(), fmt.Sprint("key-", i))
		if header {
			ctx = metadata.AppendToOutgoingContext(context.Background(), "x-key", fmt.Sprint("key-", i))
		}
		infos[i] = balancer.PickInfo{Ctx: ctx, FullMethodName: "/bench.Service/Method"}
	}
	return infos
}

// BenchmarkPick measures Pick+Done for every scheduler beside grpc-go's
// round_robin, least_request_experimental and weighted_round_robin,
// serially and in parallel, all built through their registered builders.
//
//	go test -run XXX -bench BenchmarkPick -benchmem ./balancer/
func BenchmarkPick(b *testing.B) {
	type policy struct {
		label, name, cfg string
		header           bool
	}
	policies := []policy{
		{"grpc_round_robin", "round_robin", "", false},
		{"grpc_least_request", "least_request_experimental", `{"choiceCount":2}`, false},
		{"grpc_weighted_round_robin", "weighted_round_robin", `{}`, false},
	}
	for _, s := range Schedulers {
		policies = append(policies, policy{"ipvs_" + s, Name, fmt.Sprintf(`{"scheduler":%q}`, s), false})
	}
	policies = append(policies,
		policy{"ipvs_rr_sticky", Name, `{"scheduler":"rr","persistenceTimeout":"300s"}`, false},
		policy{"ipvs_sh_header", Name, `{"scheduler":"sh","hashKey":"x-key"}`, true})

	weights := func(i int) uint32 { return uint32(1 + i%4) }
	for _, n := range benchSizes {
		var ipvs *builtPolicy // one ipvs balancer per size, reconfigured per scheduler
		for _, pol := range policies {
			var p balancer.Picker
			if pol.name == Name {
				if ipvs == nil {
					ipvs = newBuiltPolicy(b, Name, pol.cfg, n, weights)
				} else {
					ipvs.configure(b, Name, pol.cfg)
				}
				p = ipvs.picker(b)
			} else {
				p = buildPolicy(b, pol.name, pol.cfg, n, nil)
			}
			infos := benchInfos(pol.header)
			b.Run(fmt.Sprintf("%s/n=%d/serial", pol.label, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					res, err := p.Pick(infos[i&1023])
					if err != nil {
						b.Fatal(err)
					}
					if res.Done != nil {
						res.Done(balancer.DoneInfo{})
					}
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/parallel", pol.label, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						res, err := p.Pick(infos[i&1023])
						if err != nil {
							b.Error(err)
							return
						}
						if res.Done != nil {
							res.Done(balancer.DoneInfo{})
						}
						i++
					}
				})
			})
		}
	}
}

// BenchmarkBalanceQuality: 8 gRPC backends on loopback, one 10x slower
// (10 ms against 1 ms), 16 closed-loop clients making 2,000 RPCs through
// each policy. It reports the RPC latency's p50 and p99 and the slow
// backend's share of the RPCs (an even spread is 12.5%).
//
//	go test -run XXX -bench BenchmarkBalanceQuality -benchtime 1x ./balancer/
func BenchmarkBalanceQuality(b *testing.B) {
	policies := []struct{ label, cfg string }{
		{"grpc_round_robin", `{"round_robin":{}}`},
		{"ipvs_rr", `{"ipvs":{"scheduler":"rr"}}`},
		{"ipvs_wlc", `{"ipvs":{"scheduler":"wlc"}}`},
		{"ipvs_sed", `{"ipvs":{"scheduler":"sed"}}`},
		{"ipvs_nq", `{"ipvs":{"scheduler":"nq"}}`},
		{"ipvs_twos", `{"ipvs":{"scheduler":"twos"}}`},
	}
	for _, pol := range policies {
		b.Run(pol.label, func(b *testing.B) {
			for b.Loop() {
				q := balanceQuality(b, pol.cfg)
				b.ReportMetric(q.p50, "p50-ms")
				b.ReportMetric(q.p95, "p95-ms")
				b.ReportMetric(q.p99, "p99-ms")
				b.ReportMetric(q.mean, "mean-ms")
				b.ReportMetric(q.slowShare, "%slow-share")
			}
		})
	}
}

type quality struct{ p50, p95, p99, mean, slowShare float64 }

func balanceQuality(b *testing.B, lbConfig string) quality {
	delays := []time.Duration{10 * time.Millisecond}
	for range 7 {
		delays = append(delays, time.Millisecond)
	}
	backends := startBenchBackends(b, delays)
	r := manual.NewBuilderWithScheme(fmt.Sprintf("quality-%d", time.Now().UnixNano()))
	var eps []resolver.Endpoint
	for _, be := range backends {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: be.addr}}})
	}
	r.InitialState(resolver.State{Endpoints: eps})
	conn, err := grpc.NewClient(r.Scheme()+":///q", grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[`+lbConfig+`]}`))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)
	waitAllReady(b, client, backends)
	const clients, total = 16, 2000
	var mu sync.Mutex
	var lat []float64
	shares := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for next.Add(1) <= total {
				start := time.Now()
				name, err := call(context.Background(), client, "")
				if err != nil {
					b.Error(err)
					return
				}
				d := float64(time.Since(start)) / 1e6
				mu.Lock()
				lat = append(lat, d)
				shares[name]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	var sum float64
	for _, l := range lat {
		sum += l
	}
	return quality{p50: lat[len(lat)/2], p95: lat[len(lat)*95/100], p99: lat[len(lat)*99/100],
		mean: sum / float64(len(lat)), slowShare: 100 * float64(shares[backends[0].name]) / float64(len(lat))}
}

func startBenchBackends(b *testing.B, delays []time.Duration) []*testBackend {
	var out []*testBackend
	for i, d := range delays {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		be := &testBackend{name: fmt.Sprint("b", i), delay: d, addr: lis.Addr().String(), srv: grpc.NewServer()}
		testgrpc.RegisterTestServiceServer(be.srv, be)
		go be.srv.Serve(lis)
		b.Cleanup(be.srv.Stop)
		out = append(out, be)
	}
	return out
}

// BenchmarkPickHeaderKeyed measures header-keyed picks (hashKey set, the
// key read from outgoing metadata) of the hashing and locality schedulers
// beside grpc-go's round_robin and least_request_experimental, at 1,000
// backends, in one run.
//
//	go test -run XXX -bench BenchmarkPickHeaderKeyed -benchmem ./balancer/
func BenchmarkPickHeaderKeyed(b *testing.B) {
	const n = 1000
	weights := func(i int) uint32 { return uint32(1 + i%4) }
	type policy struct{ label, name, cfg string }
	policies := []policy{
		{"grpc_round_robin", "round_robin", ""},
		{"grpc_least_request", "least_request_experimental", `{"choiceCount":2}`},
	}
	for _, s := range []string{"sh", "dh", "mh", "lblc", "lblcr"} {
		policies = append(policies, policy{"ipvs_" + s + "_header", Name, fmt.Sprintf(`{"scheduler":%q,"hashKey":"x-key"}`, s)})
	}
	infos := benchInfos(true)
	for _, pol := range policies {
		var p balancer.Picker
		if pol.name == Name {
			p = newBuiltPolicy(b, Name, pol.cfg, n, weights).picker(b)
		} else {
			p = buildPolicy(b, pol.name, pol.cfg, n, nil)
		}
		b.Run(pol.label, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				res, err := p.Pick(infos[i&1023])
				if err != nil {
					b.Fatal(err)
				}
				if res.Done != nil {
					res.Done(balancer.DoneInfo{})
				}
			}
		})
	}
}
