// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"
	"slices"
	"sync/atomic"
)

// ErrNoDestination is IPVS's "no destination available": every backend is
// quiesced, overloaded, not ready, or the request's key maps to one that
// cannot take it.
var ErrNoDestination = errors.New("ipvs: no destination available: every backend is quiesced (weight 0), overloaded, or not ready")

// ErrConnecting: the backend a request must go to (its hash key's) is
// still connecting. The request should wait for the next picker instead of
// failing: a client's first requests, and those after a reconnect, must
// not fail because their backend's connection is a few milliseconds
// younger than another's.
var ErrConnecting = errors.New("ipvs: the request's backend is still connecting")

// connecting is what a scheduler picks for ErrConnecting.
var connecting = &slot{}

// slot is a backend in one picker.
type slot struct {
	b           *backend
	value       any
	addr        string
	weight      uint32
	ready       bool
	failed      bool
	terminating bool
	// plain and counted are what a pick of this slot returns, built once:
	// a pick hands out a pointer to one, never copies a struct.
	plain, counted Picked
}

// eligible: weight > 0 and not overloaded (availability is being a
// candidate).
func (s *slot) eligible() bool { return s.weight > 0 && !s.b.overloaded.Load() }

// picker is an immutable snapshot of the backends plus atomics; the
// scheduler's mutable state lives in st. Picker is its exported face.
type picker struct {
	st *state
	// What Pick reads of the configuration, captured at build: the state's
	// fields change under the balancer's lock while old pickers run.
	cfg    *Config
	lblc   *affinityTable
	sticky *affinityTable
	// count: picks and Dones are counted per backend (the scheduler reads
	// load, or a backend has thresholds).
	count bool
	// thresholds: some backend has an upper threshold.
	thresholds bool

	sched scheduler
	slots []slot  // every endpoint, canonical order
	cand  []*slot // READY and not terminating: the destinations
	term  []*slot // READY and terminating: the last resort (KEP-1669)
	// fallback: no ready, non-terminating slot has a weight, so the
	// terminating ones are the candidates (and term is empty).
	fallback bool
	keys     []atomic.Uint64
	tree     *minTree // over keys
}

// scheduler chooses among a picker's candidates.
type scheduler interface {
	// keys says which key the least-load scan uses (keyNone: no keys).
	keys() keyKind
	// prepare builds the scheduler's per-picker data, reusing what st
	// kept when the inputs did not change. It runs under the balancer's
	// lock.
	prepare(p *picker)
	// pick returns the chosen slot, or nil for "no destination".
	pick(p *picker, req Request) *slot
}

// newScheduler returns a fresh scheduler for a picker.
func newScheduler(name string) scheduler {
	switch name {
	case "rr":
		return &rr{}
	case "wrr":
		return &wrr{}
	case "lc":
		return lc{}
	case "wlc":
		return wlc{}
	case "sed":
		return sed{}
	case "nq":
		return nq{}
	case "fo":
		return &fo{}
	case "ovf":
		return &ovf{}
	case "lblc":
		return lblc{}
	case "lblcr":
		return lblcr{}
	case "dh":
		return &dh{}
	case "sh":
		return &sh{}
	case "mh":
		return &mh{}
	case "twos":
		return &twos{}
	}
	panic("ipvs: unknown scheduler " + name) // ParseConfig rejects these
}

// buildPicker makes a picker from the backends, in canonical order. It
// runs under the engine's lock; it is O(backends) with a handful of
// allocations, since it runs on every change of a backend's state.
func buildPicker(st *state, views []Backend) *picker {
	p := &picker{st: st, cfg: st.cfg, lblc: st.lblc, sticky: st.sticky,
		sched: newScheduler(st.cfg.Scheduler), slots: make([]slot, len(views))}
	st.builds++
	refs := make([]slotRef, len(views))
	kind := p.sched.keys()
	for i, v := range views {
		b := st.backend(v.Addr)
		b.built = st.builds
		b.setThresholds(v.Info.UpperThreshold, v.Info.LowerThreshold)
		p.thresholds = p.thresholds || v.Info.UpperThreshold > 0
		if v.Info.Weight > 0 {
			b.lastWeight = v.Info.Weight
		}
		s := &p.slots[i]
		*s = slot{b: b, value: v.Value, addr: v.Addr, weight: v.Info.Weight, ready: v.State == Ready, failed: v.State == Failed,
			terminating: v.Info.Terminating,
			plain:       Picked{Addr: v.Addr, Value: v.Value},
			counted:     Picked{Addr: v.Addr, Value: v.Value, Release: b.releaseFn, Wrapped: b.wrapped}}
		refs[i] = slotRef{p: p, cand: -1, weight: s.weight, kind: kind}
		switch {
		case s.ready && !s.terminating:
			refs[i].cand = len(p.cand)
			p.cand = append(p.cand, s)
		case s.ready:
			p.term = append(p.term, s)
		}
	}
	// KEP-1669: with no ready endpoint that has a weight, the terminating
	// ones that serve are the destinations, scheduled as ready ones are
	// (servicemodel.Active says the same to xDS). With ready ones, they
	// are only the last resort (pickTerminating).
	if !slices.ContainsFunc(p.cand, func(s *slot) bool { return s.weight > 0 }) && len(p.term) > 0 {
		p.fallback = true
		p.cand, p.term = p.cand[:0], nil
		for i := range p.slots {
			refs[i].cand = -1
			if s := &p.slots[i]; s.ready {
				refs[i].cand = len(p.cand)
				p.cand = append(p.cand, s)
			}
		}
	}
	p.count = p.thresholds || ReadsLoad(st.cfg.Scheduler)
	if kind != keyNone {
		p.keys = make([]atomic.Uint64, len(p.cand))
	}
	for i := range p.slots {
		if refs[i].cand >= 0 && kind != keyNone {
			refs[i].key = &p.keys[refs[i].cand]
			p.keys[refs[i].cand].Store(p.slots[i].b.key(kind, refs[i].weight))
		}
	}
	if kind != keyNone {
		p.tree = newMinTree(p.keys)
	}
	for i := range p.slots {
		p.slots[i].b.cur.Store(&refs[i])
	}
	for addr, b := range st.backends {
		if b.built != st.builds {
			// Gone from the resolver state: in-flight RPCs still release
			// it through their Done; it comes back fresh if it returns.
			b.cur.Store(nil)
			delete(st.backends, addr)
		}
	}
	p.sched.prepare(p)
	st.current = p
	return p
}

// pick chooses a backend for a request and counts it there until its
// release (when the picker counts load).
func (p *picker) pick(req Request) (*Picked, error) {
	if p.sticky != nil {
		return p.pickPersistent(req)
	}
	s := p.sched.pick(p, req)
	switch {
	case s == connecting:
		return nil, ErrConnecting
	case s == nil:
		if s = p.pickTerminating(); s == nil {
			return nil, ErrNoDestination
		}
	}
	if p.count {
		s.b.acquire()
		return &s.counted, nil
	}
	return &s.plain, nil
}

// pickTerminating is the KEP-1669 fallback: when no ready endpoint can take
// the RPC, the terminating-but-serving one with the least OH/w does.
func (p *picker) pickTerminating() *slot {
	var best *slot
	var bestOH int64
	for _, s := range p.term {
		if !s.eligible() {
			continue
		}
		oh := s.b.overhead()
		if best == nil || oh*int64(best.weight) < bestOH*int64(s.weight) {
			best, bestOH = s, oh
		}
	}
	return best
}

// minKey is the least-load choice: the first candidate with the smallest
// key (the earliest on ties), or -1.
func (p *picker) minKey() int { return p.tree.argmin() }

// now is the coarse clock.
func (p *picker) now() int64 { return p.st.now.Load() }

// schedOrNil is p's scheduler, or nil for no picker.
func (p *picker) schedOrNil() scheduler {
	if p == nil {
		return nil
	}
	return p.sched
}
