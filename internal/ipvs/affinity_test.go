// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"sync"
	"testing"
)

func TestAffinityTable(t *testing.T) {
	tbl := newAffinityTable(100)
	for i := uint64(0); i < 100; i++ {
		e := &affinity{key: i * 7919}
		e.lastUse.Store(int64(i))
		tbl.put(e)
	}
	if tbl.len() != 100 {
		t.Fatalf("len %d", tbl.len())
	}
	for i := uint64(0); i < 100; i++ {
		if e := tbl.get(i * 7919); e == nil || e.key != i*7919 {
			t.Fatalf("key %d lost", i)
		}
	}
	// Replacing keeps the count.
	tbl.put(&affinity{key: 0})
	if tbl.len() != 100 || tbl.get(0).lastUse.Load() != 0 {
		t.Fatalf("replace: len %d", tbl.len())
	}
	// A full table evicts the least recently used eighth (pinned ones stay).
	tbl.get(7919).inflight.Store(1) // lastUse 1, pinned
	tbl.put(&affinity{key: 1})
	if tbl.len() > 100 || tbl.get(7919) == nil || tbl.get(2*7919) != nil {
		t.Errorf("eviction: len %d, pinned kept %v, oldest unpinned gone %v", tbl.len(), tbl.get(7919) != nil, tbl.get(2*7919) == nil)
	}
	// Expiry keeps the recent and the pinned.
	tbl.expire(1000, 950)
	if tbl.get(7919) == nil || tbl.get(99*7919) != nil && tbl.get(99*7919).lastUse.Load() < 50 {
		t.Errorf("expiry")
	}
	if n := tbl.len(); n == 0 || n > 60 {
		t.Errorf("after expiry %d entries", n)
	}
}

// TestAffinityTableConcurrent reads while writers insert, evict and
// resize (run with -race).
func TestAffinityTableConcurrent(t *testing.T) {
	tbl := newAffinityTable(64)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Go(func() {
			for i := uint64(0); i < 2000; i++ {
				e := &affinity{key: i%200 + uint64(w)*1000}
				e.lastUse.Store(int64(i))
				tbl.put(e)
				if i%100 == 0 {
					tbl.expire(int64(i), 50)
				}
			}
		})
	}
	for r := 0; r < 2; r++ {
		wg.Go(func() {
			for i := uint64(0); i < 20000; i++ {
				if e := tbl.get(i % 1200); e != nil && e.key != i%1200 {
					t.Errorf("got key %d for %d", e.key, i%1200)
					return
				}
			}
		})
	}
	wg.Wait()
	if tbl.len() > 64 {
		t.Errorf("bound exceeded: %d", tbl.len())
	}
}
