// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestWRRExactCounts(t *testing.T) {
	tests := []struct {
		weights []uint32
		picks   int
		want    map[string]int
	}{
		{[]uint32{3, 2, 1}, 600, map[string]int{"A": 300, "B": 200, "C": 100}},
		{[]uint32{4, 3, 2}, 900, map[string]int{"A": 400, "B": 300, "C": 200}},
		{[]uint32{0, 2, 1}, 300, map[string]int{"B": 200, "C": 100}},
		{[]uint32{6, 4, 2}, 6, map[string]int{"A": 3, "B": 2, "C": 1}}, // gcd 2: a cycle of 6
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			h := newHarness(t, cfg("wrr"), specs(tt.weights...))
			got := count(h.cycle(tt.picks))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWRREqualWeightsIsRR(t *testing.T) {
	w := newHarness(t, cfg("wrr"), specs(7, 7, 7, 7))
	r := newHarness(t, cfg("rr"), specs(1, 1, 1, 1))
	if a, b := w.cycle(12), r.cycle(12); a != b {
		t.Errorf("wrr %q, rr %q", a, b)
	}
}

// TestWRRRandomWeights: every cycle has exactly w_i/g picks of backend i,
// and every prefix stays within one pick of the ideal share.
func TestWRRRandomWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := 0; trial < 200; trial++ {
		n := 2 + rng.IntN(7)
		weights := make([]uint64, n)
		for i := range weights {
			weights[i] = 1 + rng.Uint64N(20)
		}
		seq := smoothCycle(weights)
		checkCycle(t, weights, seq)
	}
}

func TestWRRPrefixDeviation(t *testing.T) {
	weights := []uint64{10}
	for range 90 {
		weights = append(weights, 1)
	}
	dev := checkCycle(t, weights, smoothCycle(weights))
	t.Logf("[10, 1x90]: max prefix deviation %.3f picks (the kernel's wrr: 9)", dev)
}

// checkCycle checks exact counts and the prefix bound, and returns the
// largest deviation seen.
func checkCycle(t *testing.T, weights []uint64, seq []int32) float64 {
	t.Helper()
	var g, total uint64
	for _, w := range weights {
		g = gcd(g, w)
	}
	for _, w := range weights {
		total += w / g
	}
	if uint64(len(seq)) != total {
		t.Fatalf("weights %v: cycle of %d, want %d", weights, len(seq), total)
	}
	counts := make([]uint64, len(weights))
	worst := 0.0
	for step, idx := range seq {
		counts[idx]++
		for i, w := range weights {
			ideal := float64(step+1) * float64(w/g) / float64(total)
			if d := abs(float64(counts[i]) - ideal); d > worst {
				worst = d
			}
		}
	}
	for i, w := range weights {
		if counts[i] != w/g {
			t.Fatalf("weights %v: backend %d picked %d times per cycle, want %d", weights, i, counts[i], w/g)
		}
	}
	if worst >= 1 {
		t.Fatalf("weights %v: prefix deviation %.3f, want < 1", weights, worst)
	}
	return worst
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestWRRResetsOnChange(t *testing.T) {
	h := newHarness(t, cfg("wrr"), specs(2, 1))
	if got := h.cycle(2); got != "A B" {
		t.Fatalf("got %q", got)
	}
	h.rebuild() // same set and weights: the cycle goes on
	if got := h.cycle(1); got != "A" {
		t.Errorf("after a rebuild without change: %q, want A", got)
	}
	h.set(specs(1, 2)) // weights changed: a new cycle
	if got := h.cycle(3); got != "B A B" {
		t.Errorf("after a weight change: %q", got)
	}
}
