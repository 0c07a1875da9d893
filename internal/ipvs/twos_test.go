// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"math"
	"testing"
)

func TestTwos(t *testing.T) {
	single := newHarness(t, cfg("twos"), specs(5))
	if got := count(single.cycle(50)); got["A"] != 50 {
		t.Errorf("single backend: %v", got)
	}
	quiesced := newHarness(t, cfg("twos"), specs(0, 1, 0))
	if got := count(quiesced.cycle(200)); got["B"] != 200 {
		t.Errorf("weight 0 picked: %v", got)
	}
	// Idle [3, 1]: both draws idle, the first draw wins ties, so A gets
	// P(first draw is A) = 3/4.
	idle := newHarness(t, cfg("twos", `"inactiveWindow":"0s"`), specs(3, 1))
	const n = 20000
	a := count(idle.cycle(n))["A"]
	if p := float64(a) / n; math.Abs(p-0.75) > 0.015 {
		t.Errorf("P(A) = %.3f, want 0.75 ± 0.015", p)
	}
}

func TestTwosPrefersTheLessLoaded(t *testing.T) {
	h := newHarness(t, cfg("twos", `"inactiveWindow":"0s"`), specs(1, 1))
	h.setLoad("A", 5, 0)
	// Whenever a draw is B, B wins; only when both draws are A does A:
	// P(B) = 3/4.
	got := count(h.cycle(4000))
	if p := float64(got["B"]) / 4000; math.Abs(p-0.75) > 0.03 {
		t.Errorf("P(B) = %.3f, want 0.75", p)
	}
}

// TestTwosAliasIsExact: the alias table's columns give every candidate
// exactly w_i/W of the draws.
func TestTwosAliasIsExact(t *testing.T) {
	for _, weights := range [][]uint32{{3, 1}, {1, 2, 3, 4}, {7}, {0, 5, 0, 1}, {65535, 1, 1}} {
		h := newHarness(t, cfg("twos"), specs(weights...))
		tw := h.p.sched.(*twos)
		share := make([]uint64, len(weights)) // in units of 1/(n*W)
		for c := range tw.prob {
			share[c] += tw.prob[c]
			share[tw.alias[c]] += tw.total - tw.prob[c]
		}
		for i, w := range weights {
			if share[i] != uint64(w)*uint64(len(weights)) {
				t.Errorf("weights %v: candidate %d gets %d/%d, want %d", weights, i, share[i], uint64(len(weights))*tw.total, uint64(w)*uint64(len(weights)))
			}
		}
	}
}
