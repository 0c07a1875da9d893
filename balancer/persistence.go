package balancer

import "google.golang.org/grpc/balancer"

// pickPersistent adds persistence (ipvsadm -p, Kubernetes' ClientIP
// session affinity) over any scheduler: a source key keeps its backend for
// persistenceTimeout after its last use. A hit does not consult the
// scheduler (an rr cursor does not move), and neither weight 0 nor
// overload breaks it (unless expireQuiescent, for weight 0); a backend
// that leaves, or stops being a ready candidate, does. An entry never
// expires while RPCs pinned through it are in flight.
func (p *picker) pickPersistent(info balancer.PickInfo) (balancer.PickResult, error) {
	key := p.requestKey(info, sourceKey)
	now := p.now()
	t := p.sticky
	if e := t.get(key); e != nil {
		if s := p.candAt(e.b.Load().candidate(p)); s != nil && !(p.cfg.ExpireQuiescent && s.weight == 0) {
			e.lastUse.Store(now)
			return p.usePinned(s, info, e)
		}
	}
	s := p.sched.pick(p, info)
	switch {
	case s == connecting:
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	case s == nil:
		if s = p.pickTerminating(); s == nil {
			return balancer.PickResult{}, errNoDestination
		}
	}
	e := &affinity{key: key}
	e.b.Store(s.b)
	e.lastUse.Store(now)
	st := p.st
	e.unpin = func(balancer.DoneInfo) {
		e.inflight.Add(-1)
		e.lastUse.Store(st.now.Load())
	}
	e.done = func(di balancer.DoneInfo) {
		e.unpin(di)
		s.b.release()
	}
	t.put(e)
	return p.usePinned(s, info, e)
}

// usePinned sends an RPC through a persistence entry: the entry counts it
// (it must not expire while the RPC runs) and so does the backend when the
// picker counts load.
func (p *picker) usePinned(s *slot, info balancer.PickInfo, e *affinity) (balancer.PickResult, error) {
	res, err := s.child.Pick(info)
	if err != nil {
		return res, err
	}
	e.inflight.Add(1)
	done := e.unpin
	if p.count {
		s.b.acquire()
		done = e.done
	}
	chainDone(&res, done)
	return res, nil
}
