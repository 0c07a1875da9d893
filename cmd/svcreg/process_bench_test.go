// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// load100k creates a service and 100k instances through p, 64 writers at
// once, and returns the applied index they reached.
func load100k(b *testing.B, p *proc) uint64 {
	const instances = 100_000
	ctx := context.Background()
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
	self, err := p.self(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d instances in %v (applied index %d)", instances, time.Since(start).Round(time.Millisecond), self.GetAppliedIndex())
	return self.GetAppliedIndex()
}

// checkComplete fails unless p serves all 100k instances.
func checkComplete(b *testing.B, p *proc) {
	resp, err := p.registry().ListEndpoints(context.Background(), &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "web", Consistency: "stale"},
		grpc.MaxCallRecvMsgSize(64<<20))
	if err != nil || len(resp.GetEndpoints()) != 100_000 {
		b.Fatalf("%s when ready: %d endpoints, %v", p.name, len(resp.GetEndpoints()), err)
	}
}

// BenchmarkStartupToReady measures how long a server with 100k instances
// in its data dir takes, after kill -9, to be ready (/readyz 200): from
// the process start until it serves them all.
//
//	go test -run XXX -bench StartupToReady -benchtime 3x ./cmd/svcreg
func BenchmarkStartupToReady(b *testing.B) {
	p := startProc(b, "n1", "--data-dir", b.TempDir())
	p.waitReady(60 * time.Second)
	load100k(b, p)
	b.ResetTimer()
	var total, worst time.Duration
	for b.Loop() {
		p.kill()
		began := time.Now()
		p.restart()
		p.waitReady(60 * time.Second)
		took := time.Since(began)
		total += took
		worst = max(worst, took)
		b.StopTimer()
		checkComplete(b, p)
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/ready")
	b.ReportMetric(worst.Seconds(), "s/worst")
}

// BenchmarkFollowerRejoin is the same for a follower of three that was
// down for 30 s while writes went on at 100/s: from its start until it has
// caught up and is ready.
//
//	go test -run XXX -bench FollowerRejoin -benchtime 1x ./cmd/svcreg
func BenchmarkFollowerRejoin(b *testing.B) {
	procs := startThree(b)
	leader := leaderOf(b, procs)
	load100k(b, leader)
	var follower *proc
	for _, p := range procs {
		if p != leader {
			follower = p
		}
	}
	b.ResetTimer()
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		follower.kill()
		w := startPacedWriter([]*proc{leader}, fmt.Sprintf("down%d", i))
		time.Sleep(30 * time.Second)
		w.stop()
		b.StartTimer()
		began := time.Now()
		follower.restart()
		follower.waitReady(120 * time.Second)
		total += time.Since(began)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/ready")
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
		old.restart()
		poll(b, "the old leader to rejoin", 30*time.Second, func() bool { return old.state(ctx) == "follower" })
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/write-gap")
	b.ReportMetric(worst.Seconds(), "s/worst-gap")
	b.ReportMetric(electTotal.Seconds()/float64(b.N), "s/election-seen")
}

// BenchmarkRestore100k saves a snapshot of 100k instances, writes 10k
// more, and restores the snapshot through `svcreg snapshot restore` on a
// server with a data dir (one, and three): it reports the time from the
// command's start until every server serves the restored state, and the
// peak RSS of the server the restore went through (VmHWM).
//
//	go test -run XXX -bench Restore100k -benchtime 1x ./cmd/svcreg
func BenchmarkRestore100k(b *testing.B) {
	for _, servers := range []int{1, 3} {
		b.Run(fmt.Sprintf("servers=%d", servers), func(b *testing.B) {
			var procs []*proc
			if servers == 1 {
				procs = []*proc{startProc(b, "n1", "--data-dir", b.TempDir())}
				procs[0].waitReady(60 * time.Second)
			} else {
				procs = startThree(b)
			}
			leader := leaderOf(b, procs)
			load100k(b, leader)
			backup := filepath.Join(b.TempDir(), "backup.snap")
			cli(b, leader, "snapshot", "save", backup)
			st, _ := os.Stat(backup)
			b.Logf("snapshot: %d bytes", st.Size())
			var total time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				writeInstances(b, leader, fmt.Sprintf("later%d", i), 10_000)
				b.StartTimer()
				began := time.Now()
				cli(b, leader, "snapshot", "restore", backup)
				for _, p := range procs {
					poll(b, p.name+" to serve the restored state", 120*time.Second, func() bool {
						resp, err := p.registry().ListEndpoints(context.Background(), &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "web", Consistency: "stale"},
							grpc.MaxCallRecvMsgSize(64<<20))
						return err == nil && len(resp.GetEndpoints()) == 100_000
					})
				}
				total += time.Since(began)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/restore")
			b.ReportMetric(float64(peakRSS(b, leader))/(1<<20), "MiB-peak-rss")
		})
	}
}

// peakRSS is a server process's peak resident set (VmHWM).
func peakRSS(t testing.TB, p *proc) int64 {
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
