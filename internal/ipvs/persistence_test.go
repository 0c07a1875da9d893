// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"testing"
	"time"
)

func TestPersistence(t *testing.T) {
	h := newHarness(t, cfg("rr", `"persistenceTimeout":"300s"`, `"hashKey":"x-user"`), specs(1, 1, 1))
	h.pickKey("other") // A
	if got := h.pickKey("K"); got != "B" {
		t.Fatalf("first pick of K: %s", got)
	}
	h.complete("B")
	h.complete("A")
	h.tick(200 * time.Second)
	if got := h.pickKey("K"); got != "B" {
		t.Fatalf("t=200: %s", got)
	}
	h.complete("B")
	h.tick(250 * time.Second) // t=450: 250 s after the last use
	if got := h.pickKey("K"); got != "B" {
		t.Fatalf("t=450: %s", got)
	}
	// A hit does not move the rr cursor: the next new key gets C.
	if got := h.pickKey("new"); got != "C" {
		t.Errorf("new key after hits: %s, want C", got)
	}
	// Weight 0 and overload do not break stickiness.
	h.set([]spec{{name: "A", weight: 1}, {name: "B", weight: 0}, {name: "C", weight: 1}})
	if got := h.pickKey("K"); got != "B" {
		t.Errorf("quiesced B: K went to %s", got)
	}
}

func TestPersistencePinnedStreamOutlivesTTL(t *testing.T) {
	h := newHarness(t, cfg("rr", `"persistenceTimeout":"300s"`), specs(1, 1))
	first := h.pickKey("K") // a long stream, never completed
	h.tick(400 * time.Second)
	if got := h.pickKey("K"); got != first {
		t.Errorf("in-flight entry expired: %s then %s", first, got)
	}
}

func TestPersistenceBrokenByRemoval(t *testing.T) {
	// Thresholds make rr count load, so the accounting is visible.
	counted := func(names ...string) []spec {
		var out []spec
		for _, n := range names {
			out = append(out, spec{name: n, weight: 1, upper: 100})
		}
		return out
	}
	h := newHarness(t, cfg("rr", `"persistenceTimeout":"300s"`), counted("A", "B"))
	h.pickKey("x") // A
	if got := h.pickKey("K"); got != "B" {
		t.Fatalf("got %s", got)
	}
	h.set(counted("A")) // B leaves
	if got := h.pickKey("K"); got != "A" {
		t.Errorf("after B left: %s", got)
	}
	// The old RPC's Done still releases B and its entry, exactly once.
	old := h.backendGone("B")
	h.complete("B")
	h.complete("B")
	if n := h.st.backends["A"].activeCount(); n != 2 || old.activeCount() != 0 {
		t.Errorf("A active %d, B active %d", n, old.activeCount())
	}
}

func TestExpireQuiescent(t *testing.T) {
	h := newHarness(t, cfg("rr", `"persistenceTimeout":"300s"`, `"expireQuiescent":true`), specs(1, 1))
	h.pickKey("K")
	h.set(specs(0, 1))
	if got := h.pickKey("K"); got != "B" {
		t.Errorf("quiesced with expireQuiescent: %s, want a re-pick", got)
	}
}

func TestPersistencePinsWithoutCounting(t *testing.T) {
	h := newHarness(t, cfg("rr", `"persistenceTimeout":"300s"`), specs(1, 1))
	h.pickKey("K")
	e := h.p.sticky.get(hashString("K"))
	if e.inflight.Load() != 1 || h.backend("A").activeCount() != 0 {
		t.Fatalf("pinned %d, A active %d: rr without thresholds counts only the pin", e.inflight.Load(), h.backend("A").activeCount())
	}
	h.complete("A")
	if e.inflight.Load() != 0 {
		t.Errorf("unpinned %d", e.inflight.Load())
	}
}
