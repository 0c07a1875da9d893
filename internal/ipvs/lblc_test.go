// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"testing"
	"time"
)

func TestLBLCStickiness(t *testing.T) {
	h := newHarness(t, cfg("lblc", `"inactiveWindow":"0s"`), specs(2, 2, 2))
	first := h.pickKey("k") // idle: the first by wlc
	if first != "A" {
		t.Fatalf("first pick %s", first)
	}
	// A stays while others are less loaded: 2 active of weight 2 is not
	// lblc-overloaded.
	if got := h.pickKey("k"); got != "A" {
		t.Fatalf("second pick %s, want A", got)
	}
	// A third RPC makes A active (3) > weight (2) while B and C are below
	// half their weight: lblc-overloaded, the key moves to wlc's choice.
	h.pickKey("k")
	if got := h.pickKey("k"); got != "B" {
		t.Errorf("overloaded: got %s, want B", got)
	}
	// and stays there.
	if got := h.pickKey("k"); got != "B" {
		t.Errorf("after moving: got %s, want B", got)
	}
	// A quiesced cached backend moves the key.
	h.set([]spec{{name: "A", weight: 2}, {name: "B", weight: 0}, {name: "C", weight: 2}})
	if got := h.pickKey("k"); got != "C" {
		t.Errorf("quiesced: got %s, want C", got)
	}
	// A removed one too.
	h.set([]spec{{name: "A", weight: 2}, {name: "B", weight: 2}})
	if got := h.pickKey("k"); got == "C" || got == "" {
		t.Errorf("removed: got %q", got)
	}
}

func TestLBLCExpiry(t *testing.T) {
	h := newHarness(t, cfg("lblc", `"lblcExpiration":"1h"`, `"inactiveWindow":"0s"`), specs(1, 1))
	h.pickKey("k")
	h.tick(59 * time.Minute)
	if h.p.lblc.len() != 1 {
		t.Fatalf("expired early")
	}
	h.tick(2 * time.Minute)
	if h.p.lblc.len() != 0 {
		t.Errorf("not expired after lblcExpiration")
	}
}

func TestLBLCTableBound(t *testing.T) {
	h := newHarness(t, cfg("lblc", `"lblcMaxEntries":16`), specs(1, 1))
	for i := 0; i < 100; i++ {
		h.tick(time.Second) // ages, so the oldest go first
		h.pickKey(fmt.Sprint("k", i))
	}
	if n := h.p.lblc.len(); n > 16 {
		t.Fatalf("table holds %d entries, bound 16", n)
	}
	if h.p.lblc.get(hashString("k99")) == nil || h.p.lblc.get(hashString("k0")) != nil {
		t.Errorf("eviction is not least recently used first")
	}
}

func TestLBLCR(t *testing.T) {
	h := newHarness(t, cfg("lblcr", `"lblcExpiration":"1h"`, `"inactiveWindow":"0s"`), specs(1, 1, 1))
	set := func() int { return len(*h.p.lblc.get(hashString("k")).set.Load()) }
	h.pickKey("k")
	h.pickKey("k") // A: active 2 > weight 1 while B, C idle: overloaded
	if got := h.pickKey("k"); got != "B" || set() != 2 {
		t.Fatalf("overload: got %s with a set of %d, want B joining", got, set())
	}
	// The set's least loaded member serves.
	h.complete("A")
	h.complete("A")
	if got := h.pickKey("k"); got != "A" {
		t.Errorf("got %s, want the set's least loaded A", got)
	}
	// Unmodified for an expiration period: the most loaded member leaves,
	// one per period.
	h.tick(61 * time.Minute)
	h.pickKey("k")
	if set() != 1 {
		t.Errorf("set of %d after one period, want 1", set())
	}
}
