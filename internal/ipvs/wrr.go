// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"sync/atomic"
)

// maxCycle bounds a wrr cycle's length (after dividing the weights by
// their gcd): 4 MiB of indices. Longer cycles are scaled down, which keeps
// the shares within 1/maxCycle of exact.
const maxCycle = 1 << 20

// wrr is weighted round robin with exact counts per cycle: candidate i is
// picked w_i/g times in every Σw/g picks (g the gcd of the weights).
// Deviation from ip_vs_wrr.c: the picks are interleaved smoothly (nginx's
// smooth weighted round robin), so every prefix of the cycle stays within
// one pick of each backend's ideal share, where the kernel's passes are
// bursty (9 picks off on [10, 1x90]). The cycle is computed once per set
// of candidates and weights; a pick is one atomic increment.
type wrr struct {
	c *wrrCycle
}

// wrrCycle is one cycle of picks over a candidate set; it lives in the
// balancer's state so that rebuilds that keep the set keep the position.
type wrrCycle struct {
	fp   uint64
	seq  []int32 // candidate indices
	next atomic.Uint64
}

func (*wrr) keys() keyKind { return keyNone }

func (w *wrr) prepare(p *picker) {
	fp := fingerprint(p.cand, func(s *slot) uint32 { return s.weight })
	if c := p.st.wrr; c != nil && c.fp == fp {
		w.c = c
		return
	}
	weights := make([]uint64, len(p.cand))
	for i, s := range p.cand {
		weights[i] = uint64(s.weight)
	}
	w.c = &wrrCycle{fp: fp, seq: smoothCycle(weights)}
	p.st.wrr = w.c
}

func (w *wrr) pick(p *picker, _ Request) *slot {
	n := uint64(len(w.c.seq))
	if n == 0 {
		return nil
	}
	// An overloaded backend's turn passes to the next in the cycle.
	for range n {
		s := p.cand[w.c.seq[(w.c.next.Add(1)-1)%n]]
		if s.eligible() {
			return s
		}
	}
	return nil
}

// smoothCycle computes one cycle of nginx's smooth weighted round robin:
// each step every backend gains its weight, the one with the most
// (earliest on ties) is picked and loses the total. That picks the
// backend with the largest deficit against its ideal share, which keeps
// every prefix within one pick of it.
//
// Backends of equal weight take turns in order, so the step only compares
// the next backend of each distinct weight: O(distinct weights) per pick
// instead of O(backends).
func smoothCycle(weights []uint64) []int32 {
	g := uint64(0)
	for _, w := range weights {
		g = gcd(g, w)
	}
	if g == 0 {
		return nil // every weight is 0: no destination
	}
	var total uint64
	scaled := make([]uint64, len(weights))
	for i, w := range weights {
		scaled[i] = w / g
		total += scaled[i]
	}
	if total > maxCycle {
		// Scale down, keeping every positive weight positive.
		var t uint64
		for i, w := range scaled {
			if w > 0 {
				scaled[i] = max(1, w*maxCycle/total)
			}
			t += scaled[i]
		}
		total = t
	}
	type class struct {
		w       uint64
		members []int32 // in candidate order
		picks   uint64
	}
	var classes []*class
	byWeight := map[uint64]*class{}
	for i, w := range scaled {
		if w == 0 {
			continue
		}
		c := byWeight[w]
		if c == nil {
			c = &class{w: w}
			byWeight[w] = c
			classes = append(classes, c)
		}
		c.members = append(c.members, int32(i))
	}
	seq := make([]int32, 0, total)
	for t := uint64(1); t <= total; t++ {
		// The current weight of a class's next member after t steps is
		// t*w - total*picks_of_that_member; it is the class's largest.
		var best *class
		var bestCW int64
		var bestIdx int32
		for _, c := range classes {
			size := uint64(len(c.members))
			idx := c.members[c.picks%size]
			cw := int64(t*c.w) - int64(total*(c.picks/size))
			if best == nil || cw > bestCW || cw == bestCW && idx < bestIdx {
				best, bestCW, bestIdx = c, cw, idx
			}
		}
		seq = append(seq, bestIdx)
		best.picks++
	}
	return seq
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// fingerprint identifies a candidate set with a per-slot value.
func fingerprint(slots []*slot, value func(*slot) uint32) uint64 {
	h := uint64(len(slots))
	for _, s := range slots {
		h = mix(h, s.b.addrHash)
		h = mix(h, uint64(value(s)))
	}
	return h
}
