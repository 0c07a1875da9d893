// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"sync/atomic"
)

// rr is round robin (ip_vs_rr.c): the next eligible candidate after the
// last pick, circularly. Weights above zero are ignored and weight 0 is
// never picked. The cursor follows the last picked backend across picker
// rebuilds: after picks of A and B and B's removal, the next pick is C.
type rr struct {
	order []*slot      // candidates with weight > 0
	cur   atomic.Int64 // index in order of the last pick; -1 before any
	// fast: no thresholds, so every member of order is always eligible
	// and the cursor is a plain atomic increment, as grpc-go's round_robin.
	fast bool
}

func (*rr) keys() keyKind { return keyNone }

func (r *rr) prepare(p *picker) {
	for _, s := range p.cand {
		if s.weight > 0 {
			r.order = append(r.order, s)
		}
	}
	r.fast = !p.thresholds
	r.cur.Store(-1)
	// Remember the previous picker's last pick (kept across pickers that
	// had nothing to pick from).
	if prev, ok := p.st.current.schedOrNil().(*rr); ok && len(prev.order) > 0 {
		if last := prev.cur.Load(); last >= 0 {
			p.st.rrLast = prev.order[last%int64(len(prev.order))].addr
		}
	}
	if p.st.rrLast == "" {
		return
	}
	// Continue after it in canonical order: from the last member at or
	// before it.
	for i, s := range r.order {
		if s.addr <= p.st.rrLast {
			r.cur.Store(int64(i))
		}
	}
}

func (r *rr) pick(p *picker, _ Request) *slot {
	n := int64(len(r.order))
	if n == 0 {
		return nil
	}
	if r.fast {
		return r.order[r.cur.Add(1)%n]
	}
	for {
		c := r.cur.Load()
		found := int64(-1)
		for k := int64(1); k <= n; k++ {
			if j := (c + k) % n; r.order[j].eligible() {
				found = j
				break
			}
		}
		if found < 0 {
			return nil // the cursor stays where it was
		}
		if r.cur.CompareAndSwap(c, found) {
			return r.order[found]
		}
	}
}
