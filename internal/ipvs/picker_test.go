// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"testing"
)

// TestNoDestination: every scheduler, every backend quiesced: no
// destination.
func TestNoDestination(t *testing.T) {
	for _, sched := range Schedulers {
		t.Run(sched, func(t *testing.T) {
			h := newHarness(t, cfg(sched), specs(0, 0, 0))
			if _, err := h.pickReq(Request{Source: clientKey, Dest: methodKey}); !isNoDestination(err) {
				t.Fatalf("err = %v", err)
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
			b.release() // a stray release
			if n := b.activeCount(); n != 0 {
				t.Errorf("B active %d after an extra release", n)
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

// TestCountingOnlyWhenRead: a scheduler that reads no load (rr without
// thresholds) counts nothing and hands out no release; one that does
// counts every pick.
func TestCountingOnlyWhenRead(t *testing.T) {
	h := newHarness(t, cfg("rr"), specs(1, 1))
	got, err := h.p.pick(Request{})
	if err != nil || got.Release != nil || h.backend("A").activeCount() != 0 {
		t.Errorf("rr without thresholds counts: release %v, active %d", got.Release != nil, h.backend("A").activeCount())
	}
	w := newHarness(t, cfg("wlc"), specs(1, 1))
	got, _ = w.p.pick(Request{})
	if got.Release == nil || w.backend("A").activeCount() != 1 {
		t.Errorf("wlc does not count")
	}
}
