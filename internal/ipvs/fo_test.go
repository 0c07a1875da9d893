// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import "testing"

func TestFO(t *testing.T) {
	h := newHarness(t, cfg("fo"), specs(1, 3, 2))
	if got := h.picks(4); got != "B B B B" {
		t.Errorf("got %q, want always B", got)
	}
	h.set(specs(1, 0, 2))
	if got := h.picks(2); got != "C C" {
		t.Errorf("B quiesced: got %q, want C", got)
	}
	h.set(specs(2, 2))
	if got := h.picks(1); got != "A" {
		t.Errorf("tie: got %q, want the first", got)
	}
}
