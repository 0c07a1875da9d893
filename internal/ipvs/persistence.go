// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// pickPersistent adds persistence (ipvsadm -p, Kubernetes' ClientIP
// session affinity) over any scheduler: a source key keeps its backend for
// persistenceTimeout after its last use. A hit does not consult the
// scheduler (an rr cursor does not move), and neither weight 0 nor
// overload breaks it (unless expireQuiescent, for weight 0); a backend
// that leaves, or stops being a ready candidate, does. An entry never
// expires while RPCs pinned through it are in flight.
func (p *picker) pickPersistent(req Request) (*Picked, error) {
	key := req.Source
	now := p.now()
	t := p.sticky
	if e := t.get(key); e != nil {
		if s := p.candAt(e.b.Load().candidate(p)); s != nil && !(p.cfg.ExpireQuiescent && s.weight == 0) {
			e.lastUse.Store(now)
			return p.usePinned(s, e), nil
		}
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
	e := &affinity{key: key}
	e.b.Store(s.b)
	e.lastUse.Store(now)
	st := p.st
	e.unpin = func() {
		e.inflight.Add(-1)
		e.lastUse.Store(st.now.Load())
	}
	b := s.b
	e.done = func() {
		e.unpin()
		b.release()
	}
	e.wrappedUnpin, e.wrappedDone = st.wrap(e.unpin), st.wrap(e.done)
	t.put(e)
	return p.usePinned(s, e), nil
}

// usePinned sends a request through a persistence entry: the entry counts
// it (it must not expire while the request runs) and so does the backend
// when the picker counts load.
func (p *picker) usePinned(s *slot, e *affinity) *Picked {
	// What the entry's picks return is built once per picker (the slot
	// carries the adapter's value of this build).
	c := e.picks.Load()
	if c == nil || c.s != s {
		c = &pinnedPicks{s: s,
			plain:   Picked{Addr: s.addr, Value: s.value, Release: e.unpin, Wrapped: e.wrappedUnpin},
			counted: Picked{Addr: s.addr, Value: s.value, Release: e.done, Wrapped: e.wrappedDone}}
		e.picks.Store(c)
	}
	e.inflight.Add(1)
	if p.count {
		s.b.acquire()
		return &c.counted
	}
	return &c.plain
}

// pinnedPicks are a persistence entry's picks through one picker's slot.
type pinnedPicks struct {
	s              *slot
	plain, counted Picked
}
