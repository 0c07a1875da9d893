// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// load is a backend's state in a vector: weight, active, inactive.
type load struct {
	w             uint32
	active, inact int64
}

func loaded(t *testing.T, scheduler string, loads ...load) *harness {
	t.Helper()
	ws := make([]uint32, len(loads))
	for i, l := range loads {
		ws[i] = l.w
	}
	h := newHarness(t, cfg(scheduler), specs(ws...))
	for i, l := range loads {
		h.setLoad(string(rune('A'+i)), l.active, l.inact)
	}
	return h
}

// TestLeastLoadVectors are docs/ipvs.md's reference vectors for lc, wlc, sed and nq.
func TestLeastLoadVectors(t *testing.T) {
	tests := []struct {
		scheduler string
		loads     []load
		want      string
	}{
		{"lc", []load{{1, 2, 0}, {1, 1, 0}, {1, 3, 0}}, "B"},
		{"lc", []load{{1, 1, 0}, {1, 0, 255}}, "B"},
		{"lc", []load{{5, 1, 0}, {1, 1, 0}}, "A"}, // weights ignored: tie, first
		{"lc", []load{{0, 0, 0}, {1, 3, 0}}, "B"}, // weight 0 never
		{"wlc", []load{{1, 1, 0}, {3, 2, 0}}, "B"},
		{"wlc", []load{{2, 2, 0}, {1, 1, 0}}, "A"}, // 512/2 = 256/1: tie, first
		{"wlc", []load{{1, 0, 0}, {4, 0, 0}}, "A"}, // all idle: first
		{"sed", []load{{1, 0, 1000}, {1, 0, 0}}, "A"},
		{"sed", []load{{1, 0, 0}, {3, 0, 0}}, "B"},
		{"nq", []load{{1, 0, 0}, {10, 0, 0}}, "A"},
		{"nq", []load{{10, 1, 0}, {1, 0, 0}}, "B"},
		{"nq", []load{{1, 2, 0}, {3, 2, 0}}, "B"}, // none idle: sed
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.scheduler, tt.loads), func(t *testing.T) {
			if got := loaded(t, tt.scheduler, tt.loads...).pick(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// reference is the plain O(n) scan of docs/ipvs.md with cross-multiplied
// ratios, against which the key scans are checked.
func reference(scheduler string, loads []load) int {
	best := -1
	less := func(i, j int) bool { // is i strictly better than j?
		a, b := loads[i], loads[j]
		ohA, ohB := a.active*256+a.inact, b.active*256+b.inact
		switch scheduler {
		case "lc":
			return ohA < ohB
		case "wlc":
			return ohA*int64(b.w) < ohB*int64(a.w)
		case "sed", "nq":
			return (a.active+1)*int64(b.w) < (b.active+1)*int64(a.w)
		}
		panic(scheduler)
	}
	if scheduler == "nq" {
		for i, l := range loads {
			if l.w > 0 && l.active == 0 {
				return i
			}
		}
	}
	for i, l := range loads {
		if l.w == 0 {
			continue
		}
		if best < 0 || less(i, best) {
			best = i
		}
	}
	return best
}

// TestLeastLoadDifferential compares the key scan of lc, wlc, sed and nq
// with the reference on random states (nq with nobody idle is sed).
func TestLeastLoadDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, scheduler := range []string{"lc", "wlc", "sed", "nq"} {
		for trial := 0; trial < 500; trial++ {
			n := 1 + rng.IntN(12)
			loads := make([]load, n)
			for i := range loads {
				loads[i] = load{w: uint32(rng.IntN(6)), active: int64(rng.IntN(5)), inact: int64(rng.IntN(600))}
				if trial%3 == 0 {
					loads[i].w = uint32(rng.IntN(65536))
					loads[i].active = int64(rng.IntN(4000))
				}
			}
			want := "!"
			if i := reference(scheduler, loads); i >= 0 {
				want = string(rune('A' + i))
			}
			got := loaded(t, scheduler, loads...).pick()
			if got[0] == '!' {
				got = "!"
			}
			if got != want {
				t.Fatalf("%s on %v: got %s, reference %s", scheduler, loads, got, want)
			}
		}
	}
}

// TestNQIsSEDWhenNoneIdle is the differential of docs/ipvs.md's vectors on live pickers.
func TestNQIsSEDWhenNoneIdle(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 300; trial++ {
		n := 2 + rng.IntN(8)
		loads := make([]load, n)
		for i := range loads {
			loads[i] = load{w: 1 + uint32(rng.IntN(9)), active: 1 + int64(rng.IntN(9))}
		}
		if a, b := loaded(t, "nq", loads...).pick(), loaded(t, "sed", loads...).pick(); a != b {
			t.Fatalf("%v: nq %s, sed %s", loads, a, b)
		}
	}
}

// TestInactiveWindow: completions count as inactive for one window (in
// quarter buckets), so sequential RPCs under lc spread instead of all
// landing on the first backend.
func TestInactiveWindow(t *testing.T) {
	h := newHarness(t, cfg("lc"), specs(1, 1, 1))
	if got := h.cycle(6); got != "A B C A B C" {
		t.Errorf("sequential lc: %q", got)
	}
	if got := h.backend("A").inactiveCount(); got != 2 {
		t.Errorf("A inactive %d, want 2", got)
	}
	for range inactiveBuckets {
		h.tick(DefaultInactiveWindow / inactiveBuckets)
	}
	if got := h.backend("A").inactiveCount(); got != 0 {
		t.Errorf("A inactive %d after a window, want 0", got)
	}
	if got := h.p.keys[0].Load(); got != 0 {
		t.Errorf("A's key %d after the window, want 0", got)
	}
	off := newHarness(t, cfg("lc", `"inactiveWindow":"0s"`), specs(1, 1))
	if got := off.cycle(3); got != "A A A" {
		t.Errorf("without an inactive window: %q", got)
	}
}
