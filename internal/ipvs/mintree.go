// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import "sync/atomic"

// fanout is the min tree's branching: 16 keys are two cache lines.
const fanout = 16

// minTree finds the leftmost smallest key among the candidates in
// O(fanout * log_fanout n) instead of a scan of all n. Level 0 is the keys
// themselves; each node above holds the minimum of its fanout children.
// The top level (at most fanout nodes) is scanned.
//
// Updates are lock-free: a changed key recomputes its ancestors while
// their minimum changes. Concurrent updates of one block can leave a node
// stale until the next update below it; a pick then takes a near-minimal
// backend, never an unavailable one (argmin checks the leaf), as the
// kernel's lock-free scheduling does under contention. Serially the tree
// is exact: the tests compare it with a plain scan.
type minTree struct {
	levels [][]atomic.Uint64
}

func newMinTree(keys []atomic.Uint64) *minTree {
	t := &minTree{levels: [][]atomic.Uint64{keys}}
	for n := len(keys); n > fanout; {
		n = (n + fanout - 1) / fanout
		t.levels = append(t.levels, make([]atomic.Uint64, n))
	}
	for l := 1; l < len(t.levels); l++ {
		for i := range t.levels[l] {
			t.levels[l][i].Store(blockMin(t.levels[l-1], i))
		}
	}
	return t
}

// blockMin is the minimum of block b of a level.
func blockMin(level []atomic.Uint64, b int) uint64 {
	m := uint64(unavailableKey)
	for j, end := b*fanout, min(b*fanout+fanout, len(level)); j < end; j++ {
		m = min(m, level[j].Load())
	}
	return m
}

// update propagates the change of key i to its ancestors.
func (t *minTree) update(i int, key uint64) {
	for l := 1; l < len(t.levels); l++ {
		b := i / fanout
		node := &t.levels[l][b]
		cur := node.Load()
		m := key
		if key > cur || key == cur {
			// The key grew (or stayed): the block's minimum may have moved.
			m = blockMin(t.levels[l-1], b)
		}
		if m == cur {
			return // this node and its ancestors are unchanged
		}
		node.Store(m)
		i, key = b, m
	}
}

// argmin returns the index of the leftmost smallest key, or -1 when every
// key is unavailable.
func (t *minTree) argmin() int {
	top := len(t.levels) - 1
	best, idx := uint64(unavailableKey), -1
	for i := range t.levels[top] {
		if k := t.levels[top][i].Load(); k < best {
			best, idx = k, i
		}
	}
	if idx < 0 {
		return -1
	}
	for l := top - 1; l >= 0; l-- {
		level := t.levels[l]
		start, end := idx*fanout, min(idx*fanout+fanout, len(level))
		child, childKey := -1, uint64(unavailableKey)
		for j := start; j < end; j++ {
			k := level[j].Load()
			if k == best {
				child, childKey = j, k
				break
			}
			if k < childKey { // a stale node: take the block's own minimum
				child, childKey = j, k
			}
		}
		if child < 0 {
			return -1
		}
		idx, best = child, childKey
	}
	return idx
}
