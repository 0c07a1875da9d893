// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// mapKeys returns the backend of each of n keys (on a fresh picker: keys
// hash the same whatever is in flight).
func mapKeys(h *harness, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = h.pickKey(fmt.Sprint("key-", i))
	}
	return out
}

func equalWeights(n int) []spec {
	out := make([]spec, n)
	for i := range out {
		out[i] = spec{name: fmt.Sprintf("10.0.0.%d:80", i+1), weight: 1}
	}
	return out
}

func TestHashDeterminism(t *testing.T) {
	for _, sched := range []string{"dh", "sh", "mh"} {
		t.Run(sched, func(t *testing.T) {
			h := newHarness(t, cfg(sched), equalWeights(10))
			want := mapKeys(h, 200)
			for round := 0; round < 50; round++ { // 10^4 picks, with rebuilds
				h.rebuild()
				if got := mapKeys(h, 200); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("round %d: keys moved without a change", round)
				}
			}
			// Another client (a new state) given the endpoints in another
			// order agrees on every key: the balancer sorts them, and the
			// table depends only on the canonical list.
			shuffled := equalWeights(10)
			rand.New(rand.NewPCG(1, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			other := newHarness(t, cfg(sched), canonicalSpecs(shuffled))
			if got := mapKeys(other, 200); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("two clients disagree")
			}
		})
	}
}

// canonicalSpecs sorts specs as the balancer sorts endpoints.
func canonicalSpecs(s []spec) []spec {
	out := append([]spec(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].name < out[i].name {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// disruption is the share of n keys that move when the backends change
// from a to b, and the share that moves between backends present in both.
func disruption(t *testing.T, sched string, a, b []spec, n int) (moved, between float64) {
	before := mapKeys(newHarness(t, cfg(sched), a), n)
	after := mapKeys(newHarness(t, cfg(sched), b), n)
	inB := map[string]bool{}
	for _, s := range b {
		inB[s.name] = true
	}
	inA := map[string]bool{}
	for _, s := range a {
		inA[s.name] = true
	}
	var m, bw int
	for i := range before {
		if before[i] != after[i] {
			m++
			if inB[before[i]] && inA[after[i]] {
				bw++
			}
		}
	}
	return float64(m) / float64(n), float64(bw) / float64(n)
}

func TestHashDisruption(t *testing.T) {
	const keys = 100000
	for _, sched := range []string{"dh", "sh", "mh"} {
		for _, n := range []int{3, 10, 100} {
			t.Run(fmt.Sprint(sched, "/", n), func(t *testing.T) {
				all := equalWeights(n)
				without := append(append([]spec(nil), all[:n/2]...), all[n/2+1:]...)
				limit := 1/float64(n) + 0.02
				moved, between := disruption(t, sched, all, without, keys)
				if moved > limit || between > 0.02 {
					t.Errorf("leave: %.2f%% moved, %.2f%% between survivors; limits %.2f%%, 2%%", moved*100, between*100, limit*100)
				}
				moved, between = disruption(t, sched, without, all, keys)
				if moved > limit || between > 0.02 {
					t.Errorf("join: %.2f%% moved, %.2f%% between survivors", moved*100, between*100)
				}
			})
		}
	}
}

func TestSHWeights(t *testing.T) {
	h := newHarness(t, cfg("sh"), specs(4, 3, 2))
	got := map[string]int{}
	for _, name := range mapKeys(h, 90000) {
		got[name]++
	}
	for name, want := range map[string]float64{"A": 4.0 / 9, "B": 3.0 / 9, "C": 2.0 / 9} {
		share := float64(got[name]) / 90000
		if math.Abs(share-want) > 0.02 {
			t.Errorf("%s: share %.3f, want %.3f ± 0.02", name, share, want)
		}
	}
}

func TestMHQuiesceMovesNoOtherKey(t *testing.T) {
	all := equalWeights(10)
	h := newHarness(t, cfg("mh"), all)
	before := mapKeys(h, 20000)
	quiesced := append([]spec(nil), all...)
	quiesced[3].weight = 0
	h.set(quiesced)
	after := mapKeys(h, 20000)
	for i := range before {
		if before[i] != quiesced[3].name && after[i] != before[i] {
			t.Fatalf("key %d moved from %s to %s", i, before[i], after[i])
		}
		if before[i] == quiesced[3].name && after[i] != "" {
			t.Fatalf("a key of the quiesced backend went to %s without fallback", after[i])
		}
	}
	withFallback := newHarness(t, cfg("mh", `"fallback":true`), all)
	withFallback.set(quiesced)
	for i, name := range mapKeys(withFallback, 20000) {
		if name == "" || name == quiesced[3].name {
			t.Fatalf("key %d: %q with fallback", i, name)
		}
		if before[i] != quiesced[3].name && name != before[i] {
			t.Fatalf("fallback moved key %d", i)
		}
	}
}

func TestDHUnavailableFailsOnlyItsKeys(t *testing.T) {
	all := equalWeights(5)
	h := newHarness(t, cfg("dh"), all)
	before := mapKeys(h, 1000)
	down := append([]spec(nil), all...)
	down[2].down = true
	h.set(down)
	for i, name := range mapKeys(h, 1000) {
		switch {
		case before[i] == down[2].name && name != "":
			t.Fatalf("key %d of the down backend went to %s (dh has no fallback)", i, name)
		case before[i] != down[2].name && name != before[i]:
			t.Fatalf("key %d moved from %s to %q", i, before[i], name)
		}
	}
	sh := newHarness(t, cfg("sh", `"fallback":true`), all)
	shBefore := mapKeys(sh, 1000)
	sh.set(down)
	for i, name := range mapKeys(sh, 1000) {
		if name == "" || shBefore[i] != down[2].name && name != shBefore[i] {
			t.Fatalf("sh fallback: key %d %s -> %q", i, shBefore[i], name)
		}
	}
}

// TestHashQueuesWhileTheKeysBackendConnects: a hashing scheduler whose
// key maps to a backend still connecting (a client's first RPCs, or after
// a reconnect) answers ErrConnecting (the request waits) rather than
// failing it, and follows fallback only for backends that failed or are
// quiesced.
func TestHashQueuesWhileTheKeysBackendConnects(t *testing.T) {
	for _, tt := range []struct {
		scheduler string
		options   []string
	}{
		{"sh", nil}, {"sh", []string{`"fallback":true`}}, {"mh", []string{`"fallback":true`}}, {"dh", nil},
	} {
		t.Run(cfg(tt.scheduler, tt.options...), func(t *testing.T) {
			all := equalWeights(5)
			h := newHarness(t, cfg(tt.scheduler, tt.options...), all)
			before := mapKeys(h, 500)
			victim := all[2].name
			state := append([]spec(nil), all...)
			state[2].connecting = true
			h.set(state)
			queued := 0
			for i := range 500 {
				k := Hash(fmt.Sprint("key-", i))
				_, err := h.pickReq(Request{Source: k, Dest: k})
				switch {
				case before[i] == victim && err != ErrConnecting:
					t.Fatalf("key %d of the connecting backend: %v, want ErrConnecting", i, err)
				case before[i] == victim:
					queued++
				case err != nil:
					t.Fatalf("key %d of a ready backend: %v", i, err)
				}
			}
			if queued == 0 {
				t.Fatal("no key maps to the connecting backend")
			}
			state[2].connecting, state[2].down = false, true
			h.set(state)
			for i, name := range mapKeys(h, 500) {
				fallback := len(tt.options) > 0
				switch {
				case before[i] == victim && fallback && (name == "" || name == victim):
					t.Fatalf("key %d of the failed backend: %q, want its next choice", i, name)
				case before[i] == victim && !fallback && name != "":
					t.Fatalf("key %d of the failed backend went to %s without fallback", i, name)
				}
			}
		})
	}
}
