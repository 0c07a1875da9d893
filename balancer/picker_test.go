package balancer

import (
	"errors"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/status"
)

// TestNoDestination: every scheduler, every backend quiesced: a plain
// error (not a status), so wait-for-ready RPCs wait for the next picker.
func TestNoDestination(t *testing.T) {
	for _, sched := range Schedulers {
		t.Run(sched, func(t *testing.T) {
			h := newHarness(t, cfg(sched), specs(0, 0, 0))
			_, err := h.pickCtx(t.Context())
			if !isNoDestination(err) {
				t.Fatalf("err = %v", err)
			}
			if _, ok := status.FromError(err); ok {
				t.Errorf("a status error fails wait-for-ready RPCs")
			}
		})
	}
}

// TestDoneExactlyOnce: every scheduler counts a pick once and its Done
// once, never below zero, also when the backend leaves and returns. The
// thresholds make every scheduler count (rr, wrr, fo, dh, sh and mh count
// nothing otherwise: they never read load).
func TestDoneExactlyOnce(t *testing.T) {
	withThresholds := func(names ...string) []spec {
		var out []spec
		for _, n := range names {
			out = append(out, spec{name: n, weight: 1, upper: 1000})
		}
		return out
	}
	for _, sched := range Schedulers {
		t.Run(sched, func(t *testing.T) {
			h := newHarness(t, cfg(sched), withThresholds("A", "B", "C"))
			picked := 0
			for range 30 {
				if h.pick()[0] != '!' {
					picked++
				}
			}
			total := func() int64 {
				var n int64
				for _, b := range h.st.backends {
					n += b.activeCount()
				}
				return n
			}
			if total() != int64(picked) {
				t.Fatalf("%d outstanding, counted %d", picked, total())
			}
			b := h.backend("B")
			h.set(withThresholds("A", "C")) // B leaves
			for len(h.inflight["B"]) > 0 {
				h.complete("B")
			}
			if n := b.activeCount(); n != 0 {
				t.Errorf("B active %d after its RPCs finished", n)
			}
			b.done(balancer.DoneInfo{}) // a stray Done
			if n := b.activeCount(); n != 0 {
				t.Errorf("B active %d after an extra Done", n)
			}
			h.set(withThresholds("A", "B", "C")) // B returns, fresh
			if n := h.backend("B").activeCount(); n != 0 {
				t.Errorf("returning B starts at %d", n)
			}
			for _, name := range []string{"A", "C"} {
				for len(h.inflight[name]) > 0 {
					h.complete(name)
				}
			}
			if total() != 0 {
				t.Errorf("%d outstanding after every Done", total())
			}
		})
	}
}

// TestTerminatingFallback: terminating endpoints get RPCs only when no
// ready one is eligible (KEP-1669).
func TestTerminatingFallback(t *testing.T) {
	for _, sched := range Schedulers {
		t.Run(sched, func(t *testing.T) {
			h := newHarness(t, cfg(sched), []spec{{name: "A", weight: 1, terminating: true}, {name: "B", weight: 1}})
			for range 5 {
				if got := h.pickKey("k"); got != "B" {
					t.Fatalf("with B ready: %q", got)
				}
				h.complete("B")
			}
			h.set([]spec{{name: "A", weight: 1, terminating: true}, {name: "B", weight: 0}})
			if got := h.pickKey("k"); got != "A" {
				t.Fatalf("only the terminating A can serve: %q", got)
			}
		})
	}
}

func TestNotReadyIsNotADestination(t *testing.T) {
	h := newHarness(t, cfg("rr"), []spec{{name: "A", weight: 1, down: true}, {name: "B", weight: 1}})
	if got := h.picks(3); got != "B B B" {
		t.Errorf("got %q", got)
	}
}

func TestChildDoneIsCalled(t *testing.T) {
	h := newHarness(t, cfg("rr"), specs(1))
	called := 0
	h.p.slots[0].child = pickerFunc(func(balancer.PickInfo) (balancer.PickResult, error) {
		return balancer.PickResult{SubConn: &fakeSubConn{name: "A"}, Done: func(balancer.DoneInfo) { called++ }}, nil
	})
	res, err := h.p.Pick(balancer.PickInfo{Ctx: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	res.Done(balancer.DoneInfo{})
	if called != 1 || h.backend("A").activeCount() != 0 {
		t.Errorf("child Done called %d times, active %d", called, h.backend("A").activeCount())
	}
	h.p.slots[0].child = pickerFunc(func(balancer.PickInfo) (balancer.PickResult, error) {
		return balancer.PickResult{}, errors.New("child failed")
	})
	if _, err := h.p.Pick(balancer.PickInfo{Ctx: t.Context()}); err == nil || h.backend("A").activeCount() != 0 {
		t.Errorf("a failed child pick was counted")
	}
}

type pickerFunc func(balancer.PickInfo) (balancer.PickResult, error)

func (f pickerFunc) Pick(i balancer.PickInfo) (balancer.PickResult, error) { return f(i) }

func TestCountingOnlyWhenRead(t *testing.T) {
	h := newHarness(t, cfg("rr"), specs(1, 1))
	res, err := h.p.Pick(balancer.PickInfo{Ctx: t.Context()})
	if err != nil || res.Done != nil || h.backend("A").activeCount() != 0 {
		t.Errorf("rr without thresholds counts: done %v, active %d", res.Done != nil, h.backend("A").activeCount())
	}
	w := newHarness(t, cfg("wlc"), specs(1, 1))
	res, _ = w.p.Pick(balancer.PickInfo{Ctx: t.Context()})
	if res.Done == nil || w.backend("A").activeCount() != 1 {
		t.Errorf("wlc does not count")
	}
}
