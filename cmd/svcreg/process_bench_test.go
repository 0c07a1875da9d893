package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// BenchmarkRestart measures how long a server with 100k instances in its
// data dir takes, after kill -9, to serve them all again: from the
// process start until it leads at the revision it had.
//
//	go test -run XXX -bench Restart -benchtime 3x ./cmd/svcreg
func BenchmarkRestart(b *testing.B) {
	const instances = 100_000
	p := startProc(b, "n1", freeAddr(b), "--data-dir", b.TempDir())
	ctx := context.Background()
	waitLeader := func() int64 {
		var rev int64
		poll(b, "the server to lead", 60*time.Second, func() bool {
			info, err := p.info(ctx)
			rev = info.GetRevision()
			return err == nil && info.GetNode().GetState() == "leader"
		})
		return rev
	}
	waitLeader()
	if _, err := p.registry().CreateService(ctx, &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < instances; i = next.Add(1) - 1 {
				inst := webInstance(fmt.Sprintf("web-%d", i))
				inst.Ip = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
				if _, err := p.registry().CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	info, err := p.info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	want := info.GetRevision()
	b.Logf("loaded %d instances in %v (revision %d)", instances, time.Since(start).Round(time.Millisecond), want)

	b.ResetTimer()
	var total, worst time.Duration
	for b.Loop() {
		p.kill()
		began := time.Now()
		p.start()
		poll(b, "the restarted server to catch up", 60*time.Second, func() bool {
			info, err := p.info(ctx)
			return err == nil && info.GetNode().GetState() == "leader" && info.GetRevision() >= want
		})
		took := time.Since(began)
		total += took
		worst = max(worst, took)
	}
	b.StopTimer()
	resp, err := p.registry().ListInstances(ctx, &svcregv1.ListInstancesRequest{Namespace: "shop", PageSize: 1000})
	if err != nil || len(resp.GetInstances()) != 1000 {
		b.Fatalf("after restart: %d instances, %v", len(resp.GetInstances()), err)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/restart")
	b.ReportMetric(worst.Seconds(), "s/worst")
}

// BenchmarkFailover kills the leader of three servers (default Raft
// timings) with kill -9 while a client writes at 100/s round the servers,
// and measures the longest gap between acknowledged writes; then restarts
// the old leader for the next round.
//
//	go test -run XXX -bench Failover -benchtime 10x ./cmd/svcreg
func BenchmarkFailover(b *testing.B) {
	for _, scale := range []string{"1", "0.5"} {
		b.Run("raft-timeout-scale="+scale, func(b *testing.B) { benchFailover(b, "--raft-timeout-scale", scale) })
	}
}

func benchFailover(b *testing.B, flags ...string) {
	procs := startThree(b, flags...)
	ctx := context.Background()
	if _, err := procs[0].registry().CreateService(ctx, &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
		b.Fatal(err)
	}
	var total, worst, electTotal time.Duration
	round := 0
	for b.Loop() {
		round++
		w := startPacedWriter(procs, fmt.Sprintf("r%d", round))
		poll(b, "writes", 20*time.Second, func() bool { return w.count() >= 100 })
		old := leaderOf(b, procs)
		killed := time.Now()
		old.kill()
		before := w.count()
		var survivors []*proc
		for _, p := range procs {
			if p != old {
				survivors = append(survivors, p)
			}
		}
		leaderOf(b, survivors)
		elected := time.Since(killed)
		poll(b, "writes after the kill", 30*time.Second, func() bool { return w.count() >= before+100 })
		gap := longestGap(w.stop(), killed)
		total += gap
		worst = max(worst, gap)
		electTotal += elected
		old.start()
		poll(b, "the old leader to rejoin", 30*time.Second, func() bool {
			info, err := old.info(ctx)
			return err == nil && info.GetNode().GetState() == "follower"
		})
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/write-gap")
	b.ReportMetric(worst.Seconds(), "s/worst-gap")
	b.ReportMetric(electTotal.Seconds()/float64(b.N), "s/election-seen")
}
