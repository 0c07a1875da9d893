package balancer

import (
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
)

// affinityTable maps request keys to backends: lblc's destination cache,
// lblcr's destination sets and the persistence (session affinity) table.
// Reads take a shared lock and allocate nothing; inserts take the
// exclusive lock. The table is bounded: when full, the least recently used
// eighth is evicted.
type affinityTable struct {
	mu      sync.RWMutex
	entries map[uint64]*affinity
	max     int
}

// affinity is one key's entry.
type affinity struct {
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
	done     func(balancer.DoneInfo)
}

func newAffinityTable(max int) *affinityTable {
	return &affinityTable{entries: map[uint64]*affinity{}, max: max}
}

func (t *affinityTable) get(key uint64) *affinity {
	t.mu.RLock()
	e := t.entries[key]
	t.mu.RUnlock()
	return e
}

func (t *affinityTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.entries)
}

// put stores e under key, replacing what was there.
func (t *affinityTable) put(key uint64, e *affinity) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[key]; !ok && len(t.entries) >= t.max {
		t.evictLocked(len(t.entries)/8 + 1)
	}
	t.entries[key] = e
}

// evictLocked removes the n least recently used entries that have no RPC
// in flight.
func (t *affinityTable) evictLocked(n int) {
	type aged struct {
		key uint64
		at  int64
	}
	all := make([]aged, 0, len(t.entries))
	for k, e := range t.entries {
		if e.inflight.Load() == 0 {
			all = append(all, aged{k, e.lastUse.Load()})
		}
	}
	slices.SortFunc(all, func(a, b aged) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	for i := 0; i < n && i < len(all); i++ {
		delete(t.entries, all[i].key)
	}
}

// expire drops entries unused for ttl nanoseconds, except those with RPCs
// in flight.
func (t *affinityTable) expire(now, ttl int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.entries {
		if now-e.lastUse.Load() >= ttl && e.inflight.Load() == 0 {
			delete(t.entries, k)
		}
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
