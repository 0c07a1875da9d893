// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import "testing"

func TestOVF(t *testing.T) {
	h := newHarness(t, cfg("ovf"), specs(2, 1))
	// A takes RPCs while active <= 2 (so up to 3), then B up to 2.
	if got := h.picks(5); got != "A A A B B" {
		t.Fatalf("burst: got %q, want \"A A A B B\"", got)
	}
	if got := h.pick(); got[0] != '!' {
		t.Fatalf("past every weight: got %q, want no destination", got)
	}
	h.complete("A")
	if got := h.pick(); got != "A" {
		t.Errorf("after one A completes: got %q, want A", got)
	}
}
