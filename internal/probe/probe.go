// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package probe runs readiness probes, as the kubelet's prober does
// (pkg/kubelet/prober): one worker per probed instance checks it every
// period, counts consecutive results against the success and failure
// thresholds, and reports only a change of verdict, so a steady instance
// costs no write. The node agent runs a Manager for the instances of its
// node, each registry server one for its share of the rest
// (docs/health.md). Checks are bounded in time (the probe's timeout) and
// in number (Config.Concurrency in flight at once); a report never holds
// a check.
package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock"
)

// Target is one instance to probe, as the registry has it.
type Target struct {
	Namespace, Name, UID string
	IP                   string
	// Port is the probe's port resolved on the instance (its IntOrString
	// as a number).
	Port int32
	// Probe is the instance's readiness probe, defaulted.
	Probe *svcregv1.Probe
	// Status is what the registry holds of the probe now.
	Status *svcregv1.ProbeStatus
}

// TargetOf is what the prober needs of an instance with a probe: the
// probe's port resolved (a name through the instance's ports).
func TargetOf(inst *svcregv1.Instance) Target {
	t := Target{Namespace: inst.GetNamespace(), Name: inst.GetName(), UID: inst.GetUid(), IP: inst.GetIp(),
		Probe: inst.GetReadinessProbe(), Status: inst.GetProbeStatus()}
	switch h := inst.GetReadinessProbe().GetHandler().(type) {
	case *svcregv1.Probe_Grpc:
		t.Port = h.Grpc.GetPort()
	case *svcregv1.Probe_HttpGet:
		t.Port = portOf(inst, h.HttpGet.GetPort())
	case *svcregv1.Probe_TcpSocket:
		t.Port = portOf(inst, h.TcpSocket.GetPort())
	}
	return t
}

// portOf is the number an IntOrString port names on inst (0 if none).
func portOf(inst *svcregv1.Instance, port string) int32 {
	if n, err := strconv.Atoi(port); err == nil {
		return int32(n)
	}
	for _, p := range inst.GetPorts() {
		if p.GetName() == port {
			return p.GetPort()
		}
	}
	return 0
}

// Key identifies a target across updates.
func (t Target) Key() string { return t.Namespace + "/" + t.Name }

// same reports whether two targets are probed alike (a change of anything
// else, the status included, does not restart the worker).
func (t Target) same(o Target) bool {
	return t.UID == o.UID && t.IP == o.IP && t.Port == o.Port && proto.Equal(t.Probe, o.Probe)
}

// Report is a verdict to record: the prober calls it on a transition (and
// once when it takes over an instance another prober held). It returns an
// error to be called again at the next check.
type Report func(ctx context.Context, t Target, ready bool, message string) error

// Config configures a Manager.
type Config struct {
	// Prober names this prober in the status: "agent/NODE", "server/ID".
	Prober string
	// Report records verdicts.
	Report Report
	// Concurrency bounds the checks in flight; default 64.
	Concurrency int
	// Clock is the time source; default the real clock.
	Clock  clock.Clock
	Logger *slog.Logger
	// Dial opens the TCP connections of tcpSocket and gRPC checks (tests
	// and the agent's namespace); default net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Manager runs one worker per target.
type Manager struct {
	cfg   Config
	slots chan struct{} // the concurrency bound

	mu      sync.Mutex // guards workers and closed; held only to change them
	workers map[string]*worker
	closed  bool
	wg      sync.WaitGroup

	checks, failures atomic.Uint64 // checks run, and how many failed

	afterCheck func(t Target, ok bool) // tests: each check's end
}

// Checks is how many checks ran, and how many of them failed.
func (m *Manager) Checks() (total, failed uint64) { return m.checks.Load(), m.failures.Load() }

// errTimedOut: a check outlived its timeout.
var errTimedOut = errors.New("timed out")

// New returns a manager probing nothing yet.
func New(cfg Config) *Manager {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	return &Manager{cfg: cfg, slots: make(chan struct{}, cfg.Concurrency), workers: map[string]*worker{}}
}

// Sync makes the targets the ones probed: workers start for new targets,
// stop for gone ones, and restart for targets probed differently (a new
// uid, address, port or probe). A target whose status alone changed keeps
// its worker, which learns the registry's verdict from it.
func (m *Manager) Sync(targets []Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	want := make(map[string]Target, len(targets))
	for _, t := range targets {
		want[t.Key()] = t
	}
	for k, w := range m.workers {
		if t, ok := want[k]; !ok || !t.same(w.target) {
			w.stop()
			delete(m.workers, k)
		}
	}
	for k, t := range want {
		if w, ok := m.workers[k]; ok {
			w.observe(t.Status)
			continue
		}
		w := newWorker(m, t)
		m.workers[k] = w
		m.wg.Go(w.run)
	}
}

// Probing is the number of targets probed.
func (m *Manager) Probing() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workers)
}

// Close stops every worker and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for k, w := range m.workers {
		w.stop()
		delete(m.workers, k)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// worker probes one target.
type worker struct {
	m      *Manager
	target Target
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards stored (Sync's updates against the loop)
	stored *svcregv1.ProbeStatus
}

func newWorker(m *Manager, t Target) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	return &worker{m: m, target: t, ctx: ctx, cancel: cancel, stored: t.Status}
}

func (w *worker) stop() { w.cancel() }

func (w *worker) observe(st *svcregv1.ProbeStatus) {
	w.mu.Lock()
	w.stored = st
	w.mu.Unlock()
}

func (w *worker) registry() *svcregv1.ProbeStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stored
}

// run is the probe loop: the initial delay, then a check every period.
func (w *worker) run() {
	p := w.target.Probe
	clk := w.m.cfg.Clock
	if !w.sleep(clk, time.Duration(p.GetInitialDelaySeconds())*time.Second) {
		return
	}
	period := time.Duration(p.GetPeriodSeconds()) * time.Second
	ticker := clk.NewTicker(period)
	defer ticker.Stop()
	st := verdict{ready: w.registry().GetReady()}
	for {
		ok, msg := w.check()
		if w.ctx.Err() != nil {
			return
		}
		w.m.checks.Add(1)
		if !ok {
			w.m.failures.Add(1)
		}
		if st.observe(ok, p) {
			st.message = msg
		}
		w.reportIfNeeded(&st)
		if hook := w.m.afterCheck; hook != nil {
			hook(w.target, ok)
		}
		select {
		case <-w.ctx.Done():
			return
		case <-ticker.Chan():
		}
	}
}

// sleep waits d on the clock, or until the worker stops (false).
func (w *worker) sleep(clk clock.Clock, d time.Duration) bool {
	if d <= 0 {
		return w.ctx.Err() == nil
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-w.ctx.Done():
		return false
	}
}

// check runs one check within its slot and timeout.
func (w *worker) check() (bool, string) {
	select {
	case w.m.slots <- struct{}{}:
	case <-w.ctx.Done():
		return false, "stopped"
	}
	defer func() { <-w.m.slots }()
	// The timeout runs on the manager's clock, so tests drive it.
	ctx, cancel := context.WithCancelCause(w.ctx)
	defer cancel(nil)
	timeout := time.Duration(w.target.Probe.GetTimeoutSeconds()) * time.Second
	t := w.m.cfg.Clock.AfterFunc(timeout, func() { cancel(fmt.Errorf("%w after %v", errTimedOut, timeout)) })
	defer t.Stop()
	addr := net.JoinHostPort(w.target.IP, strconv.Itoa(int(w.target.Port)))
	switch h := w.target.Probe.GetHandler().(type) {
	case *svcregv1.Probe_Grpc:
		return checkGRPC(ctx, w.m.cfg.Dial, addr, h.Grpc.GetService())
	case *svcregv1.Probe_HttpGet:
		return checkHTTP(ctx, w.m.cfg.Dial, addr, h.HttpGet)
	case *svcregv1.Probe_TcpSocket:
		return checkTCP(ctx, w.m.cfg.Dial, addr)
	}
	return false, "no handler"
}

// reportIfNeeded reports the verdict when the registry holds another one,
// or another prober's: a transition, or taking the instance over.
func (w *worker) reportIfNeeded(st *verdict) {
	reg := w.registry()
	if reg.GetReady() == st.ready && reg.GetProber() == w.m.cfg.Prober {
		return
	}
	if !st.decided && reg.GetReady() == st.ready {
		return // a takeover is recorded once a check has agreed
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.m.cfg.Report(ctx, w.target, st.ready, st.message); err != nil {
		if w.ctx.Err() == nil {
			w.m.cfg.Logger.Warn("reporting a probe result failed; retrying at the next check", "instance", w.target.Key(), "ready", st.ready, "err", err)
		}
		return
	}
	w.observe(&svcregv1.ProbeStatus{Ready: st.ready, Prober: w.m.cfg.Prober, Message: st.message})
}

// verdict is the threshold state machine (the kubelet's worker): the
// verdict flips after success_threshold consecutive successes, or
// failure_threshold consecutive failures.
type verdict struct {
	ready              bool
	successes, failure int32
	// decided: at least one check agreed with the verdict since the worker
	// started (a takeover reports then).
	decided bool
	message string
}

// observe counts one result and reports whether the verdict flipped.
func (v *verdict) observe(ok bool, p *svcregv1.Probe) bool {
	if ok {
		v.successes, v.failure = v.successes+1, 0
	} else {
		v.successes, v.failure = 0, v.failure+1
	}
	switch {
	case !v.ready && ok && v.successes >= p.GetSuccessThreshold():
		v.ready, v.decided = true, true
		return true
	case v.ready && !ok && v.failure >= p.GetFailureThreshold():
		v.ready, v.decided = false, true
		return true
	case ok == v.ready:
		v.decided = true
	}
	return false
}
