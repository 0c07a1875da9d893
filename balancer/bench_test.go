package balancer

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/balancer"
	_ "google.golang.org/grpc/balancer/leastrequest"
	_ "google.golang.org/grpc/balancer/weightedroundrobin"
	"google.golang.org/grpc/metadata"
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

// BenchmarkHashDisruption reports the share of 10^5 keys that move when
// one of N backends leaves or joins, and the share that moves between
// backends present before and after (IPVS.md §2: at most 1/N + 2% and 2%).
//
//	go test -run XXX -bench BenchmarkHashDisruption -benchtime 1x ./balancer/
func BenchmarkHashDisruption(b *testing.B) {
	for _, sched := range []string{"dh", "sh", "mh"} {
		for _, n := range []int{3, 10, 100} {
			b.Run(fmt.Sprintf("%s/n=%d", sched, n), func(b *testing.B) {
				t := &testing.T{}
				all := equalWeights(n)
				without := append(append([]spec(nil), all[:n/2]...), all[n/2+1:]...)
				var leave, leaveBetween, join, joinBetween float64
				for b.Loop() {
					leave, leaveBetween = disruption(t, sched, all, without, 100000)
					join, joinBetween = disruption(t, sched, without, all, 100000)
				}
				b.ReportMetric(100*leave, "%moved-leave")
				b.ReportMetric(100*leaveBetween, "%between-leave")
				b.ReportMetric(100*join, "%moved-join")
				b.ReportMetric(100*joinBetween, "%between-join")
				b.ReportMetric(100*(1/float64(n)+0.02), "%limit")
			})
		}
	}
}

// BenchmarkWRRCycle builds wrr cycles and reports the largest prefix
// deviation from the ideal share, in picks.
//
//	go test -run XXX -bench BenchmarkWRRCycle ./balancer/
func BenchmarkWRRCycle(b *testing.B) {
	skewed := []uint64{10}
	for range 90 {
		skewed = append(skewed, 1)
	}
	random := make([]uint64, 1000)
	for i := range random {
		random[i] = uint64(1 + (i*7919)%20)
	}
	for _, c := range []struct {
		name    string
		weights []uint64
	}{{"10+1x90", skewed}, {"1000x1..20", random}} {
		b.Run(c.name, func(b *testing.B) {
			var seq []int32
			for b.Loop() {
				seq = smoothCycle(c.weights)
			}
			b.ReportMetric(checkCycle(&testing.T{}, c.weights, seq), "max-prefix-deviation")
			b.ReportMetric(float64(len(seq)), "cycle-len")
		})
	}
}
