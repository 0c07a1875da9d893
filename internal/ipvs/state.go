// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/svcreg/svcreg/internal/clock"
)

// state is what survives picker rebuilds: backend records, the coarse
// clock, scheduler tables and cursors. Fields without atomics are touched
// only while building a picker, under the balancer's lock.
type state struct {
	cfg   *Config
	clock clock.Clock
	// rand draws uniformly from [0, n) (twos); replaceable in tests.
	rand func(n uint64) uint64

	backends map[string]*backend
	builds   uint64 // pickers built

	// epoch rotates the inactive buckets; now is a coarse clock (ns since
	// the Unix epoch) for table ages, updated by tick, so that Pick never
	// reads the system clock.
	epoch    atomic.Uint64
	now      atomic.Int64
	inactive atomic.Bool // completions count as inactive RPCs

	current *picker // the last picker built
	rrLast  string  // address of rr's last pick before the current picker

	wrr    *wrrCycle  // the wrr cycle of the current candidate set
	hash   *hashTable // dh, sh, mh lookup table
	lblc   *affinityTable
	sticky *affinityTable

	// wrap makes a release function's adapter form (Options.Wrap).
	wrapFn func(release func()) any
}

func newState(cfg *Config, c clock.Clock, wrap func(func()) any) *state {
	st := &state{clock: c, rand: rand.Uint64N, backends: map[string]*backend{}, wrapFn: wrap}
	st.now.Store(c.Now().UnixNano())
	st.configure(cfg)
	return st
}

// configure applies a new config; tables whose meaning changed start over.
func (st *state) configure(cfg *Config) {
	old := st.cfg
	st.cfg = cfg
	st.inactive.Store(cfg.InactiveWindow > 0 && UsesInactive(cfg.Scheduler))
	if old == nil || old.Scheduler != cfg.Scheduler || old.LBLCMaxEntries != cfg.LBLCMaxEntries {
		st.wrr, st.hash, st.lblc = nil, nil, nil
		if cfg.Scheduler == "lblc" || cfg.Scheduler == "lblcr" {
			st.lblc = newAffinityTable(cfg.LBLCMaxEntries)
		}
	}
	if cfg.PersistenceTimeout > 0 {
		if st.sticky == nil || old == nil || old.LBLCMaxEntries != cfg.LBLCMaxEntries {
			st.sticky = newAffinityTable(cfg.LBLCMaxEntries)
		}
	} else {
		st.sticky = nil
	}
	if old != nil && old.MHTableSize != cfg.MHTableSize {
		st.hash = nil
	}
}

// wrap is the adapter's form of a release function, or nil.
func (st *state) wrap(release func()) any {
	if st.wrapFn == nil {
		return nil
	}
	return st.wrapFn(release)
}

// tracksInactive reports whether completions count as inactive RPCs.
func (st *state) tracksInactive() bool { return st.inactive.Load() }

// tickInterval is how often tick must run: a quarter of the inactive
// window, and at least every second when tables age; 0 when nothing does.
func (st *state) tickInterval() time.Duration {
	var d time.Duration
	if st.tracksInactive() {
		d = time.Duration(st.cfg.InactiveWindow) / inactiveBuckets
	}
	if st.lblc != nil || st.sticky != nil {
		if d == 0 || d > time.Second {
			d = time.Second
		}
	}
	return d
}

// tick advances the coarse clock, rotates the inactive buckets and expires
// old table entries. The balancer's ticker calls it with what it read
// under the balancer's lock; tests call it with a fake clock.
func (st *state) tick(w tickWork) {
	now := st.clock.Now().UnixNano()
	st.now.Store(now)
	if w.inactive {
		e := st.epoch.Add(1)
		for _, b := range w.backends {
			b.expireInactive(e)
		}
	}
	if w.lblc != nil {
		w.lblc.expire(now, w.lblcTTL)
	}
	if w.sticky != nil {
		w.sticky.expire(now, w.stickyTTL)
	}
}

// tickWork is what one tick touches, read under the balancer's lock.
type tickWork struct {
	backends           []*backend
	inactive           bool
	lblc, sticky       *affinityTable
	lblcTTL, stickyTTL int64
}

func (st *state) tickWork() tickWork {
	w := tickWork{backends: make([]*backend, 0, len(st.backends)), inactive: st.tracksInactive(),
		lblc: st.lblc, sticky: st.sticky, lblcTTL: int64(st.cfg.LBLCExpiration), stickyTTL: int64(st.cfg.PersistenceTimeout)}
	for _, b := range st.backends {
		w.backends = append(w.backends, b)
	}
	return w
}

// backend returns the record of an address, creating it.
func (st *state) backend(addr string) *backend {
	b := st.backends[addr]
	if b == nil {
		b = newBackend(addr, st)
		st.backends[addr] = b
	}
	return b
}
