// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"math"
	"sync/atomic"
)

// inactiveBuckets split the inactive window: a completed RPC counts as
// inactive for between 3/4 and 1 window (a bucketed TIME_WAIT).
const inactiveBuckets = 4

// backend is the balancer's record of one endpoint, kept across picker
// rebuilds (and while RPCs picked for it are in flight, by their Done
// functions, even after it leaves).
type backend struct {
	addr     string
	addrHash uint64 // hashString(addr), for fingerprints
	built    uint64 // the last build that saw this backend

	// load packs activeconns (RPCs picked and not yet done) in its high 32
	// bits and inactconns (RPCs done within the inactive window) in its
	// low 32, so that a pick, a completion and a read of OH are one atomic
	// operation each.
	load atomic.Uint64
	// inactive holds the same completions in buckets rotated by the
	// balancer's ticker (st.epoch), to take them out of load as they age.
	inactive [inactiveBuckets]atomic.Int64
	// overloaded is the threshold state (ipvsadm -x/-y), with hysteresis.
	overloaded atomic.Bool
	// upper and lower are the thresholds; 0 means none.
	upper, lower atomic.Uint32
	// lastWeight is the last non-zero weight (mh keeps a quiesced
	// backend's table slots with it, as ip_vs_mh's last_weight).
	lastWeight uint32

	// cur locates this backend in the current picker: nil once it left
	// the resolver state.
	cur atomic.Pointer[slotRef]
	st  *state

	// releaseFn is release as a function value, and wrapped its adapter
	// form (Options.Wrap): both made once, so a pick allocates nothing.
	releaseFn func()
	wrapped   any
}

func newBackend(addr string, st *state) *backend {
	b := &backend{addr: addr, addrHash: hashString(addr), st: st}
	b.releaseFn = b.release
	b.wrapped = st.wrap(b.releaseFn)
	return b
}

// inactiveCount is inactconns: completions within the window.
func (b *backend) inactiveCount() int64 {
	var n int64
	for i := range b.inactive {
		n += b.inactive[i].Load()
	}
	return n
}

const activeOne = 1 << 32

// activeCount is activeconns.
func (b *backend) activeCount() int64 { return int64(b.load.Load() >> 32) }

// overhead is IPVS's OH = 256*activeconns + inactconns (ip_vs_dest_conn_overhead).
func (b *backend) overhead() int64 {
	l := b.load.Load()
	return int64(l>>32)<<8 + int64(l&(activeOne-1))
}

// acquire counts a picked RPC and updates the overload state: a pick that
// brings the count to the upper threshold is still sent, and then the
// backend is overloaded.
func (b *backend) acquire() {
	n := int64(b.load.Add(activeOne) >> 32)
	if u := b.upper.Load(); u > 0 && n >= int64(u) {
		b.overloaded.Store(true)
	}
	b.refreshKey()
}

// release counts a finished RPC. It never takes active below zero, so a
// Done that arrives after the counters were reset cannot corrupt them.
func (b *backend) release() {
	inactive := b.st.tracksInactive()
	for {
		l := b.load.Load()
		if l < activeOne {
			return // no active RPC
		}
		next := l - activeOne
		if inactive {
			next++
		}
		if b.load.CompareAndSwap(l, next) {
			n := int64(next >> 32)
			if inactive {
				b.inactive[b.st.epoch.Load()%inactiveBuckets].Add(1)
			}
			if b.overloaded.Load() && b.belowLower(n) {
				b.overloaded.Store(false)
			}
			b.refreshKey()
			return
		}
	}
}

// belowLower is the release side of the hysteresis: below the lower
// threshold, or below three quarters of the upper one without it.
func (b *backend) belowLower(n int64) bool {
	if l := b.lower.Load(); l > 0 {
		return n < int64(l)
	}
	return 4*n < 3*int64(b.upper.Load())
}

// setThresholds applies new thresholds; a change re-evaluates the overload
// state at once (raising upper clears it).
func (b *backend) setThresholds(upper, lower uint32) {
	if b.upper.Load() == upper && b.lower.Load() == lower {
		return
	}
	b.upper.Store(upper)
	b.lower.Store(lower)
	b.overloaded.Store(upper > 0 && b.activeCount() >= int64(upper))
}

// expireInactive drops the bucket that leaves the window.
func (b *backend) expireInactive(bucket uint64) {
	if n := b.inactive[bucket%inactiveBuckets].Swap(0); n != 0 {
		b.load.Add(-uint64(n))
		b.refreshKey()
	}
}

// keyKind says how a least-load scheduler orders backends.
type keyKind uint8

const (
	keyNone keyKind = iota
	keyLC           // OH
	keyWLC          // OH/w
	keySED          // (active+1)/w
	keyNQ           // 0 when idle, else (active+1)/w
)

// slotRef is a backend's place in a picker.
type slotRef struct {
	p      *picker
	cand   int // index in p.cand, or -1 when not a candidate
	weight uint32
	kind   keyKind
	key    *atomic.Uint64 // the least-load key, for key schedulers
}

// candidate returns the backend's index among p's candidates, or -1.
func (b *backend) candidate(p *picker) int {
	if r := b.cur.Load(); r != nil && r.p == p {
		return r.cand
	}
	return -1
}

// unavailableKey sorts after every eligible backend.
const unavailableKey = math.MaxUint64

func (b *backend) refreshKey() {
	if r := b.cur.Load(); r != nil && r.key != nil {
		k := b.key(r.kind, r.weight)
		r.key.Store(k)
		r.p.tree.update(r.cand, k)
	}
}

// key computes the scheduler's ordering key. Ratios are float64s: their
// bits sort like the numbers for non-negative values.
func (b *backend) key(kind keyKind, w uint32) uint64 {
	if w == 0 || b.overloaded.Load() {
		return unavailableKey
	}
	switch kind {
	case keyLC:
		return uint64(b.overhead())
	case keyWLC:
		return math.Float64bits(float64(b.overhead()) / float64(w))
	case keySED:
		return math.Float64bits(float64(b.activeCount()+1) / float64(w))
	case keyNQ:
		a := b.activeCount()
		if a == 0 {
			return 0
		}
		return math.Float64bits(float64(a+1) / float64(w))
	}
	return unavailableKey
}
