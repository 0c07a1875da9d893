package balancer

import "google.golang.org/grpc/balancer"

// pickPersistent adds persistence (ipvsadm -p, Kubernetes' ClientIP
// session affinity) over any scheduler: a source key keeps its backend for
// persistenceTimeout after its last use. A hit does not consult the
// scheduler (an rr cursor does not move), and neither weight 0 nor
// overload breaks it (unless expireQuiescent, for weight 0); a backend
// that leaves, or stops being a ready candidate, does. An entry never
// expires while RPCs pinned through it are in flight.
func (p *picker) pickPersistent(info *balancer.PickInfo) (balancer.PickResult, error) {
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
	if s == nil {
		if s = p.pickTerminating(); s == nil {
			return balancer.PickResult{}, errNoDestination
		}
	}
	e := &affinity{}
	e.b.Store(s.b)
	e.lastUse.Store(now)
	e.done = func(balancer.DoneInfo) {
		e.inflight.Add(-1)
		e.lastUse.Store(p.st.now.Load())
		s.b.release()
	}
	t.put(key, e)
	return p.usePinned(s, info, e)
}

func (p *picker) usePinned(s *slot, info *balancer.PickInfo, e *affinity) (balancer.PickResult, error) {
	e.inflight.Add(1)
	res, err := p.use(s, info, e.done)
	if err != nil {
		e.inflight.Add(-1)
	}
	return res, err
}
