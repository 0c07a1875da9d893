// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"slices"
	"sync"
	"sync/atomic"
)

// affinityTable maps request keys (64-bit hashes) to entries: lblc's
// destination cache, lblcr's destination sets and the persistence (session
// affinity) table. Reads are lock-free and allocate nothing: an
// open-addressing array of atomic pointers, replaced whole when it grows or
// fills with tombstones. Writes take a mutex. The table is bounded: when
// full, the least recently used eighth is evicted.
type affinityTable struct {
	slots atomic.Pointer[[]atomic.Pointer[affinity]]
	mu    sync.Mutex // writers
	used  int        // live entries
	dead  int        // tombstones
	max   int
}

// affinity is one key's entry.
type affinity struct {
	key uint64
	// b is the backend (lblc, persistence). A persistence entry never
	// changes backend: moving a key replaces the entry, so the RPCs pinned
	// through the old one release the old backend.
	b atomic.Pointer[backend]
	// set is lblcr's destination set, copy-on-write under the table lock.
	set     atomic.Pointer[[]*backend]
	lastUse atomic.Int64 // coarse ns
	lastMod atomic.Int64 // lblcr: when set last changed
	// inflight counts RPCs pinned through a persistence entry: it does not
	// expire while they run.
	inflight atomic.Int64
	// done ends a pinned request that the backend counted; unpin one it
	// did not. The wrapped forms are the adapter's (Options.Wrap).
	done, unpin               func()
	wrappedDone, wrappedUnpin any
	picks                     atomic.Pointer[pinnedPicks]
}

// tombstone marks a deleted slot: lookups probe past it.
var tombstone = &affinity{}

func newAffinityTable(max int) *affinityTable {
	t := &affinityTable{max: max}
	slots := make([]atomic.Pointer[affinity], 16)
	t.slots.Store(&slots)
	return t
}

// get returns key's entry, or nil.
func (t *affinityTable) get(key uint64) *affinity {
	slots := *t.slots.Load()
	mask := uint64(len(slots) - 1)
	for i, n := key&mask, 0; n < len(slots); i, n = (i+1)&mask, n+1 {
		e := slots[i].Load()
		if e == nil {
			return nil
		}
		if e != tombstone && e.key == key {
			return e
		}
	}
	return nil
}

func (t *affinityTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.used
}

// put stores e under e.key, replacing what was there.
func (t *affinityTable) put(e *affinity) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.replaceLocked(e) {
		return
	}
	if t.used >= t.max {
		t.evictLocked(t.used/8 + 1)
	}
	if slots := *t.slots.Load(); 2*(t.used+t.dead+1) > len(slots) {
		t.resizeLocked()
	}
	t.insertLocked(*t.slots.Load(), e)
	t.used++
}

// replaceLocked swaps in e for an existing entry of its key.
func (t *affinityTable) replaceLocked(e *affinity) bool {
	slots := *t.slots.Load()
	mask := uint64(len(slots) - 1)
	for i, n := e.key&mask, 0; n < len(slots); i, n = (i+1)&mask, n+1 {
		cur := slots[i].Load()
		if cur == nil {
			return false
		}
		if cur != tombstone && cur.key == e.key {
			slots[i].Store(e)
			return true
		}
	}
	return false
}

func (t *affinityTable) insertLocked(slots []atomic.Pointer[affinity], e *affinity) {
	mask := uint64(len(slots) - 1)
	for i := e.key & mask; ; i = (i + 1) & mask {
		if cur := slots[i].Load(); cur == nil {
			slots[i].Store(e)
			return
		}
	}
}

// resizeLocked rebuilds the array without tombstones, at twice the live
// entries' need: readers keep using the old one until they reload.
func (t *affinityTable) resizeLocked() {
	size := 16
	for size < 4*(t.used+1) {
		size *= 2
	}
	next := make([]atomic.Pointer[affinity], size)
	cur := *t.slots.Load()
	for i := range cur {
		if e := cur[i].Load(); e != nil && e != tombstone {
			t.insertLocked(next, e)
		}
	}
	t.slots.Store(&next)
	t.dead = 0
}

// deleteLocked removes the entries for which drop says so.
func (t *affinityTable) deleteLocked(drop func(*affinity) bool) {
	slots := *t.slots.Load()
	for i := range slots {
		if e := slots[i].Load(); e != nil && e != tombstone && drop(e) {
			slots[i].Store(tombstone)
			t.used--
			t.dead++
		}
	}
}

// evictLocked removes the n least recently used entries that have no RPC
// in flight.
func (t *affinityTable) evictLocked(n int) {
	var ages []int64
	slots := *t.slots.Load()
	for i := range slots {
		if e := slots[i].Load(); e != nil && e != tombstone && e.inflight.Load() == 0 {
			ages = append(ages, e.lastUse.Load())
		}
	}
	if len(ages) == 0 {
		return
	}
	slices.Sort(ages)
	cutoff := ages[min(n, len(ages))-1]
	evicted := 0
	t.deleteLocked(func(e *affinity) bool {
		if evicted < n && e.inflight.Load() == 0 && e.lastUse.Load() <= cutoff {
			evicted++
			return true
		}
		return false
	})
}

// expire drops entries unused for ttl nanoseconds, except those with RPCs
// in flight.
func (t *affinityTable) expire(now, ttl int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deleteLocked(func(e *affinity) bool { return now-e.lastUse.Load() >= ttl && e.inflight.Load() == 0 })
	if t.dead > t.used {
		t.resizeLocked()
	}
}

// modifySet replaces an lblcr entry's set under the table lock.
func (t *affinityTable) modifySet(e *affinity, f func([]*backend) []*backend) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var cur []*backend
	if p := e.set.Load(); p != nil {
		cur = *p
	}
	next := f(slices.Clone(cur))
	e.set.Store(&next)
}
