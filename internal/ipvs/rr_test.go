// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import "testing"

func TestRR(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    string
	}{
		{"fresh", []uint32{1, 1, 1}, "A B C A B C"},
		{"weights above zero ignored", []uint32{5, 1, 9}, "A B C A B C"},
		{"quiesced skipped", []uint32{1, 0, 1}, "A C A C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, cfg("rr"), specs(tt.weights...))
			if got := h.cycle(6)[:len(tt.want)]; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRRCursorFollowsIdentity(t *testing.T) {
	h := newHarness(t, cfg("rr"), specs(1, 1, 1))
	if got := h.cycle(2); got != "A B" {
		t.Fatalf("got %q", got)
	}
	h.set([]spec{{name: "A", weight: 1}, {name: "C", weight: 1}}) // B leaves
	if got := h.cycle(2); got != "C A" {
		t.Errorf("after removing B: got %q, want \"C A\"", got)
	}
	h.set(specs(1, 1, 1, 1)) // B and D join: after A comes B
	if got := h.cycle(4); got != "B C D A" {
		t.Errorf("after adding: got %q", got)
	}
}

func TestRRFailedPickLeavesTheCursor(t *testing.T) {
	h := newHarness(t, cfg("rr"), specs(1, 1, 1))
	h.cycle(1) // A
	h.set(specs(0, 0, 0))
	if _, err := h.pickReq(Request{}); !isNoDestination(err) {
		t.Fatalf("all quiesced: %v", err)
	}
	h.set(specs(1, 1, 1))
	if got := h.cycle(2); got != "B C" {
		t.Errorf("got %q, want the cursor where it was", got)
	}
}
