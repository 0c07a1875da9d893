// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
)

// BenchmarkCheck is one check of each kind against a loopback server in
// this process (its CPU counts the server's side too, so it overstates
// the prober's): ns/op is the CPU a prober spends per check, so 10,000
// instances at a 10 s period cost 1,000 × ns/op per second of a core
// (docs/benchmarks.md).
func BenchmarkCheck(b *testing.B) {
	grpcSrv := grpc.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, health.NewServer())
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go grpcSrv.Serve(glis)
	defer grpcSrv.Stop()
	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer httpSrv.Close()

	kinds := []struct {
		name  string
		addr  string
		probe *svcregv1.Probe
	}{
		{"tcpSocket", httpSrv.Listener.Addr().String(), &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{}}}},
		{"httpGet", httpSrv.Listener.Addr().String(), &svcregv1.Probe{Handler: &svcregv1.Probe_HttpGet{HttpGet: &svcregv1.HTTPGetProbe{Path: "/ready", Scheme: "HTTP"}}}},
		{"grpc", glis.Addr().String(), &svcregv1.Probe{Handler: &svcregv1.Probe_Grpc{Grpc: &svcregv1.GRPCProbe{}}}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			m := New(Config{Prober: "server/bench", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer m.Close()
			host, port, _ := net.SplitHostPort(k.addr)
			var n int
			fmt.Sscan(port, &n)
			w := newWorker(m, target(host, n, k.probe, nil))
			defer w.stop()
			b.ReportAllocs()
			for b.Loop() {
				if ok, msg := w.check(); !ok {
					b.Fatalf("check failed: %s", msg)
				}
			}
		})
	}
}

// BenchmarkProbedInstanceMemory is the heap one probed instance holds
// between checks (its worker, goroutine stack and timers), measured over
// 10,000 targets on a clock that stands still.
func BenchmarkProbedInstanceMemory(b *testing.B) {
	const n = 10000
	targets := make([]Target, n)
	for i := range targets {
		targets[i] = target("127.0.0.1", 1, &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{}},
			InitialDelaySeconds: 3600}, nil)
		targets[i].Name = fmt.Sprintf("web-%d", i)
	}
	for b.Loop() {
		clk := clocktest.New()
		before := heapAndStacks()
		m := New(Config{Prober: "server/bench", Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		m.Sync(targets)
		if err := clk.BlockUntilContext(b.Context(), n); err != nil { // every worker waits on its initial delay
			b.Fatal(err)
		}
		after := heapAndStacks()
		b.ReportMetric(float64(after-before)/n, "B/instance")
		m.Close()
	}
}

func heapAndStacks() uint64 {
	runtime.GC()
	time.Sleep(10 * time.Millisecond) // let finalizers of the last round run
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}
