// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"testing"
)

// BenchmarkHashDisruption reports the share of 10^5 keys that move when
// one of N backends leaves or joins, and the share that moves between
// backends present before and after (docs/ipvs.md, "Hashing": at most 1/N + 2% and 2%).
//
//	go test -run XXX -bench BenchmarkHashDisruption -benchtime 1x ./internal/ipvs/
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
//	go test -run XXX -bench BenchmarkWRRCycle ./internal/ipvs/
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

// BenchmarkEnginePick measures the engine's own pick and release, with no
// RPC machinery around it: what the node agent pays per connection, and
// the floor of the ipvs gRPC policy's pick (balancer.BenchmarkPick).
//
//	go test -run XXX -bench BenchmarkEnginePick -benchmem ./internal/ipvs/
func BenchmarkEnginePick(b *testing.B) {
	for _, n := range []int{10, 1000} {
		for _, sched := range Schedulers {
			cfg, err := ParseConfig([]byte(fmt.Sprintf(`{"scheduler":%q}`, sched)))
			if err != nil {
				b.Fatal(err)
			}
			e := New(cfg, Options{})
			b.Cleanup(e.Close)
			backends := make([]Backend, n)
			for i := range backends {
				backends[i] = Backend{Addr: fmt.Sprintf("10.0.%d.%d:80", i>>8, i&255), Info: EndpointInfo{Weight: uint32(1 + i%4)}}
			}
			p := e.Update(nil, backends)
			reqs := make([]Request, 1024)
			for i := range reqs {
				k := Hash(fmt.Sprint("key-", i))
				reqs[i] = Request{Source: k, Dest: k}
			}
			b.Run(fmt.Sprintf("%s/n=%d", sched, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					got, err := p.Pick(reqs[i&1023])
					if err != nil {
						b.Fatal(err)
					}
					if got.Release != nil {
						got.Release()
					}
				}
			})
		}
	}
}
