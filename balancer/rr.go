package balancer

import (
	"sync/atomic"

	"google.golang.org/grpc/balancer"
)

// rr is round robin (ip_vs_rr.c): the next eligible candidate after the
// last pick, circularly. Weights above zero are ignored. The cursor
// follows the last picked backend across picker rebuilds: after picks of
// A and B and B's removal, the next pick is C.
type rr struct {
	cur atomic.Int64 // index in p.cand of the last pick; -1 before any
}

func (*rr) keys() keyKind { return keyNone }

func (r *rr) prepare(p *picker) {
	r.cur.Store(-1)
	if p.st.current == nil {
		return
	}
	prev, ok := p.st.current.sched.(*rr)
	if !ok {
		return
	}
	last := prev.cur.Load()
	if last < 0 || int(last) >= len(p.st.current.cand) {
		return
	}
	lastAddr := p.st.current.cand[last].addr
	// Continue after lastAddr in canonical order: from the last candidate
	// at or before it.
	for i, s := range p.cand {
		if s.addr <= lastAddr {
			r.cur.Store(int64(i))
		}
	}
}

func (r *rr) pick(p *picker, _ *balancer.PickInfo) *slot {
	n := int64(len(p.cand))
	for {
		c := r.cur.Load()
		found := int64(-1)
		for k := int64(1); k <= n; k++ {
			if j := (c + k) % n; p.cand[j].eligible() {
				found = j
				break
			}
		}
		if found < 0 {
			return nil // the cursor stays where it was
		}
		if r.cur.CompareAndSwap(c, found) {
			return p.cand[found]
		}
	}
}
