// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
)

// harness runs one Manager on a fake clock against real servers on
// loopback; every check's end and every report arrive on channels.
type harness struct {
	t       *testing.T
	clock   *clocktest.Fake
	m       *Manager
	checks  chan bool
	reports chan report
	fail    atomic.Bool // the next reports fail
}

type report struct {
	ready   bool
	message string
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, clock: clocktest.New(), checks: make(chan bool, 100), reports: make(chan report, 100)}
	h.m = New(Config{Prober: "server/test", Clock: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Report: func(_ context.Context, _ Target, ready bool, message string) error {
			if h.fail.Load() {
				return io.ErrUnexpectedEOF
			}
			h.reports <- report{ready, message}
			return nil
		}})
	h.m.afterCheck = func(_ Target, ok bool) { h.checks <- ok }
	t.Cleanup(h.m.Close)
	return h
}

// check waits for the next check's outcome.
func (h *harness) check() bool {
	h.t.Helper()
	select {
	case ok := <-h.checks:
		return ok
	case <-time.After(10 * time.Second):
		h.t.Fatal("no check")
		return false
	}
}

// tick moves the clock one period once the worker waits on it, and waits
// for that check.
func (h *harness) tick(period time.Duration) bool {
	h.t.Helper()
	h.clock.AdvanceWhenWaiting(h.t, 1, period)
	return h.check()
}

// reported is the report made since the last call, if any.
func (h *harness) reported() (report, bool) {
	select {
	case r := <-h.reports:
		return r, true
	default:
		return report{}, false
	}
}

func target(ip string, port int, p *svcregv1.Probe, status *svcregv1.ProbeStatus) Target {
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds, p.TimeoutSeconds, p.SuccessThreshold, p.FailureThreshold = 10, 1, 1, 3
	}
	return Target{Namespace: "shop", Name: "web-1", UID: "u1", IP: ip, Port: int32(port), Probe: p, Status: status}
}

func hostPort(t *testing.T, addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// TestThresholds: the verdict flips only after success_threshold
// successes or failure_threshold failures in a row, and only flips are
// reported, against an HTTP server whose answer the test sets.
func TestThresholds(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(code.Load())) }))
	defer srv.Close()
	ip, port := hostPort(t, srv.Listener.Addr().String())
	h := newHarness(t)
	p := &svcregv1.Probe{Handler: &svcregv1.Probe_HttpGet{HttpGet: &svcregv1.HTTPGetProbe{Path: "/healthz", Port: "x", Scheme: "HTTP"}},
		PeriodSeconds: 5, TimeoutSeconds: 1, SuccessThreshold: 2, FailureThreshold: 3}
	period := 5 * time.Second
	h.m.Sync([]Target{target(ip, port, p, &svcregv1.ProbeStatus{Message: "not probed yet"})})

	steps := []struct {
		code      int32
		wantCheck bool
		report    *report // the report this check makes, if any
	}{
		{200, true, nil},                         // one success of two
		{200, true, &report{true, "HTTP 200"}},   // two: ready
		{200, true, nil},                         // steady: no write
		{500, false, nil},                        // one failure of three
		{200, true, nil},                         // the run is broken
		{500, false, nil},                        // one
		{503, false, nil},                        // two
		{500, false, &report{false, "HTTP 500"}}, // three: not ready
		{500, false, nil},                        // steady
	}
	for i, s := range steps {
		code.Store(s.code)
		var ok bool
		if i == 0 {
			ok = h.check() // the first check runs at once
		} else {
			ok = h.tick(period)
		}
		if ok != s.wantCheck {
			t.Fatalf("step %d: check %v, want %v", i, ok, s.wantCheck)
		}
		got, did := h.reported()
		switch {
		case s.report == nil && did:
			t.Fatalf("step %d: reported %+v; only transitions are reported", i, got)
		case s.report != nil && (!did || got != *s.report):
			t.Fatalf("step %d: reported %+v (%v), want %+v", i, got, did, *s.report)
		}
	}
}

// TestChecks: each handler against a real server that passes, then fails
// the way that handler sees failure.
func TestChecks(t *testing.T) {
	grpcSrv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, hs)
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go grpcSrv.Serve(glis)
	defer grpcSrv.Stop()
	hs.SetServingStatus("greeter", healthpb.HealthCheckResponse_SERVING)

	tcpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := tcpLis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	tests := []struct {
		name  string
		addr  string
		probe *svcregv1.Probe
		fail  func()
		why   string
	}{
		{"grpc health flips to NOT_SERVING", glis.Addr().String(),
			&svcregv1.Probe{Handler: &svcregv1.Probe_Grpc{Grpc: &svcregv1.GRPCProbe{Service: "greeter"}}},
			func() { hs.SetServingStatus("greeter", healthpb.HealthCheckResponse_NOT_SERVING) }, "gRPC health NOT_SERVING"},
		{"a closed port", tcpLis.Addr().String(),
			&svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{}}},
			func() { tcpLis.Close() }, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ip, port := hostPort(t, tt.addr)
			tg := target(ip, port, tt.probe, nil)
			tg.Probe.FailureThreshold = 1
			h.m.Sync([]Target{tg})
			if !h.check() {
				t.Fatal("the first check failed against a healthy server")
			}
			if r, ok := h.reported(); !ok || !r.ready {
				t.Fatalf("no ready report: %+v", r)
			}
			tt.fail()
			if h.tick(10 * time.Second) {
				t.Fatal("the check passed against a failing server")
			}
			if r, ok := h.reported(); !ok || r.ready || r.message != tt.why {
				t.Fatalf("report %+v (%v), want not ready with %q", r, ok, tt.why)
			}
		})
	}
}

// TestInitialDelayAndTimeout: no check before the initial delay; a check
// that outlives its timeout fails as "timed out".
func TestInitialDelayAndTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ip, port := hostPort(t, srv.Listener.Addr().String())
	h := newHarness(t)
	p := &svcregv1.Probe{Handler: &svcregv1.Probe_HttpGet{HttpGet: &svcregv1.HTTPGetProbe{Path: "/", Scheme: "HTTP"}},
		InitialDelaySeconds: 30, PeriodSeconds: 10, TimeoutSeconds: 2, SuccessThreshold: 1, FailureThreshold: 1}
	h.m.Sync([]Target{target(ip, port, p, &svcregv1.ProbeStatus{Ready: true, Prober: "server/test"})})
	select {
	case <-h.checks:
		t.Fatal("a check ran before the initial delay")
	default:
	}
	h.clock.AdvanceWhenWaiting(t, 1, 30*time.Second) // the initial delay
	// The check now waits on the server; its timeout on the clock (the
	// ticker is the other waiter).
	h.clock.AdvanceWhenWaiting(t, 2, 2*time.Second)
	if h.check() {
		t.Fatal("a check that timed out passed")
	}
	if r, ok := h.reported(); !ok || r.ready || r.message != "timed out after 2s" {
		t.Fatalf("report %+v (%v), want not ready, timed out", r, ok)
	}
}

// TestReportRetriedAndSync: a failed report is made again at the next
// check; Sync keeps a worker whose status alone changed and restarts one
// whose probe changed.
func TestReportRetriedAndSync(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ip, port := hostPort(t, lis.Addr().String())
	h := newHarness(t)
	h.fail.Store(true)
	p := &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{}}}
	tg := target(ip, port, p, nil)
	h.m.Sync([]Target{tg})
	h.check()
	if _, ok := h.reported(); ok {
		t.Fatal("a failing report was recorded")
	}
	h.fail.Store(false)
	h.tick(10 * time.Second)
	if r, ok := h.reported(); !ok || !r.ready {
		t.Fatalf("the verdict was not reported again: %+v", r)
	}
	// The registry now holds it: a status-only change keeps the worker.
	tg.Status = &svcregv1.ProbeStatus{Ready: true, Prober: "server/test"}
	h.m.Sync([]Target{tg})
	h.tick(10 * time.Second)
	if r, ok := h.reported(); ok {
		t.Fatalf("a steady verdict was reported: %+v", r)
	}
	// Another probe: a new worker, which checks at once.
	p2 := proto2(p)
	p2.PeriodSeconds = 20
	tg.Probe = p2
	h.m.Sync([]Target{tg})
	h.check()
	if h.m.Probing() != 1 {
		t.Fatalf("probing %d targets", h.m.Probing())
	}
	h.m.Sync(nil)
	if h.m.Probing() != 0 {
		t.Fatalf("probing %d targets after they left", h.m.Probing())
	}
}

func proto2(p *svcregv1.Probe) *svcregv1.Probe {
	return &svcregv1.Probe{Handler: p.Handler, PeriodSeconds: p.PeriodSeconds, TimeoutSeconds: p.TimeoutSeconds,
		SuccessThreshold: p.SuccessThreshold, FailureThreshold: p.FailureThreshold}
}
