package balancer

import (
	"errors"
	"sync/atomic"

	"google.golang.org/grpc/balancer"

	"github.com/svcreg/svcreg/internal/ipvs"
)

// errNoDestination is IPVS's "no destination available". It is not a
// status error: fail-fast RPCs fail with UNAVAILABLE and wait-for-ready
// RPCs wait for the next picker.
var errNoDestination = errors.New("ipvs: no destination available: every backend is quiesced (weight 0), overloaded, or not ready")

// connecting is what a scheduler picks when the backend a request must go
// to (its hash key's) is still connecting: the RPC waits for the next
// picker (balancer.ErrNoSubConnAvailable) instead of failing. A client's
// first RPCs, and those after a reconnect, must not fail because their
// backend's connection is a few milliseconds younger than another's.
var connecting = &slot{}

// endpointView is one endpoint as a picker is built from it: in canonical
// (address) order, with its child's picker when READY.
type endpointView struct {
	addr  string
	info  EndpointInfo
	ready bool
	// failed: its connection attempts failed (TRANSIENT_FAILURE); one
	// neither ready nor failed is still connecting.
	failed bool
	child  balancer.Picker
}

// slot is an endpoint in one picker.
type slot struct {
	b           *backend
	child       balancer.Picker
	addr        string
	weight      uint32
	ready       bool
	failed      bool
	terminating bool
}

// eligible: weight > 0 and not overloaded (availability is being a
// candidate).
func (s *slot) eligible() bool { return s.weight > 0 && !s.b.overloaded.Load() }

// picker is an immutable snapshot of the endpoints plus atomics; the
// scheduler's mutable state lives in st.
type picker struct {
	st *state
	// What Pick reads of the configuration, captured at build: the state's
	// fields change under the balancer's lock while old pickers run.
	cfg       *Config
	lblc      *affinityTable
	sticky    *affinityTable
	clientKey uint64
	// count: picks and Dones are counted per backend (the scheduler reads
	// load, or a backend has thresholds).
	count bool
	// thresholds: some backend has an upper threshold.
	thresholds bool

	sched scheduler
	slots []slot  // every endpoint, canonical order
	cand  []*slot // READY and not terminating: the destinations
	term  []*slot // READY and terminating: the last resort (KEP-1669)
	keys  []atomic.Uint64
	tree  *minTree // over keys
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
	pick(p *picker, info balancer.PickInfo) *slot
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

// buildPicker makes a picker from the endpoints, in canonical order. It
// runs under the balancer's lock; it is O(endpoints) with a handful of
// allocations, since it runs on every child state change.
func buildPicker(st *state, views []endpointView) *picker {
	p := &picker{st: st, cfg: st.cfg, lblc: st.lblc, sticky: st.sticky, clientKey: st.clientKey,
		sched: newScheduler(st.cfg.Scheduler), slots: make([]slot, len(views))}
	st.builds++
	refs := make([]slotRef, len(views))
	kind := p.sched.keys()
	for i, v := range views {
		b := st.backend(v.addr)
		b.built = st.builds
		b.setThresholds(v.info.UpperThreshold, v.info.LowerThreshold)
		p.thresholds = p.thresholds || v.info.UpperThreshold > 0
		if v.info.Weight > 0 {
			b.lastWeight = v.info.Weight
		}
		s := &p.slots[i]
		*s = slot{b: b, child: v.child, addr: v.addr, weight: v.info.Weight, ready: v.ready && v.child != nil, failed: v.failed,
			terminating: v.info.Terminating}
		refs[i] = slotRef{p: p, cand: -1, weight: s.weight, kind: kind}
		switch {
		case s.ready && !s.terminating:
			refs[i].cand = len(p.cand)
			p.cand = append(p.cand, s)
		case s.ready:
			p.term = append(p.term, s)
		}
	}
	p.count = p.thresholds || ipvs.ReadsLoad(st.cfg.Scheduler)
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

// Pick implements balancer.Picker.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	if p.sticky != nil {
		return p.pickPersistent(info)
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
	return p.use(s, info, s.b.done)
}

// use sends the RPC to s: the child picks its SubConn, and the backend
// counts the RPC until done is called.
func (p *picker) use(s *slot, info balancer.PickInfo, done func(balancer.DoneInfo)) (balancer.PickResult, error) {
	res, err := s.child.Pick(info)
	if err != nil || !p.count {
		return res, err
	}
	s.b.acquire()
	chainDone(&res, done)
	return res, nil
}

// chainDone makes res.Done call done, then the child's own Done if it set
// one (pick_first sets none; a child that does costs an allocation).
func chainDone(res *balancer.PickResult, done func(balancer.DoneInfo)) {
	if childDone := res.Done; childDone != nil {
		res.Done = func(di balancer.DoneInfo) {
			done(di)
			childDone(di)
		}
		return
	}
	res.Done = done
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
