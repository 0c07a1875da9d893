// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// TestMinTreeMatchesScan: after random key changes, the tree's argmin is
// the leftmost minimum of a plain scan, for sizes across levels.
func TestMinTreeMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{1, 15, 16, 17, 255, 256, 257, 1000, 5000} {
		keys := make([]atomic.Uint64, n)
		for i := range keys {
			keys[i].Store(uint64(rng.IntN(50)))
		}
		tree := newMinTree(keys)
		for step := 0; step < 3000; step++ {
			i := rng.IntN(n)
			k := uint64(rng.IntN(50))
			if rng.IntN(10) == 0 {
				k = unavailableKey
			}
			keys[i].Store(k)
			tree.update(i, k)
			want, best := -1, uint64(unavailableKey)
			for j := range keys {
				if v := keys[j].Load(); v < best {
					want, best = j, v
				}
			}
			if got := tree.argmin(); got != want {
				t.Fatalf("n=%d step %d: argmin %d, scan %d", n, step, got, want)
			}
		}
	}
}

// TestLeastLoadDifferentialLarge runs the key-scan differential on many
// backends, where the min tree has several levels.
func TestLeastLoadDifferentialLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, scheduler := range []string{"lc", "wlc", "sed", "nq"} {
		for trial := 0; trial < 40; trial++ {
			n := 17 + rng.IntN(400)
			loads := make([]load, n)
			for i := range loads {
				loads[i] = load{w: uint32(rng.IntN(8)), active: int64(1 + rng.IntN(6)), inact: int64(rng.IntN(300))}
			}
			names := make([]spec, n)
			for i := range names {
				names[i] = spec{name: fmtName(i), weight: loads[i].w}
			}
			h := newHarness(t, cfg(scheduler), names)
			for i := range loads {
				h.setLoad(fmtName(i), loads[i].active, loads[i].inact)
			}
			want := "!"
			if i := reference(scheduler, loads); i >= 0 {
				want = fmtName(i)
			}
			got := h.pick()
			if got[0] == '!' {
				got = "!"
			}
			if got != want {
				t.Fatalf("%s with %d backends: got %s, reference %s", scheduler, n, got, want)
			}
		}
	}
}

// fmtName gives backend i a name that sorts as i does.
func fmtName(i int) string {
	return string(rune('a'+i/676)) + string(rune('a'+i/26%26)) + string(rune('a'+i%26))
}
