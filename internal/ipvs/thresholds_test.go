// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import "testing"

func TestThresholds(t *testing.T) {
	h := newHarness(t, cfg("rr"), []spec{{name: "A", weight: 1, upper: 10}, {name: "B", weight: 0}})
	// The 10th concurrent RPC is sent, then A is overloaded.
	for i := 1; i <= 10; i++ {
		if got := h.pick(); got != "A" {
			t.Fatalf("RPC %d: %s", i, got)
		}
	}
	if got := h.pick(); got[0] != '!' {
		t.Fatalf("11th: %s, want no destination", got)
	}
	h.complete("A") // 9
	h.complete("A") // 8: still overloaded (needs < 7.5)
	if got := h.pick(); got[0] != '!' {
		t.Fatalf("at 8 outstanding: %s, want still overloaded", got)
	}
	h.complete("A") // 7: clear
	if got := h.pick(); got != "A" {
		t.Fatalf("at 7 outstanding: %s, want A again", got)
	}
}

func TestLowerThreshold(t *testing.T) {
	h := newHarness(t, cfg("wlc"), []spec{{name: "A", weight: 1, upper: 10, lower: 5}})
	h.picks(10)
	for n := 9; n >= 5; n-- {
		h.complete("A")
		if got := h.pick(); got[0] != '!' {
			t.Fatalf("at %d outstanding: %s, want still overloaded", n, got)
		}
	}
	h.complete("A") // 4: below lower
	if got := h.pick(); got != "A" {
		t.Fatalf("below 5: %s", got)
	}
}

func TestRaisingUpperClears(t *testing.T) {
	h := newHarness(t, cfg("rr"), []spec{{name: "A", weight: 1, upper: 2}})
	h.picks(2)
	if got := h.pick(); got[0] != '!' {
		t.Fatalf("overloaded: %s", got)
	}
	h.set([]spec{{name: "A", weight: 1, upper: 5}})
	if got := h.pick(); got != "A" {
		t.Fatalf("after raising upper: %s", got)
	}
}
