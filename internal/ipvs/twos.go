// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// twos is weighted power of two choices (ip_vs_twos.c): two weighted
// random draws among the candidates, the one with the lower OH/w wins (the
// first on ties). Deviation: the draws are unbiased in [0, W), where the
// kernel's [0, W] favours the first backend. A draw is O(1): Vose's alias
// method in integers, so P(i) = w_i/W exactly.
type twos struct {
	total uint64   // W = Σw
	prob  []uint64 // per column: draws below prob[c] (of W) keep column c
	alias []int32  // per column: the candidate taking the rest
}

func (*twos) keys() keyKind { return keyNone }

func (t *twos) prepare(p *picker) {
	n := len(p.cand)
	t.prob, t.alias = make([]uint64, n), make([]int32, n)
	scaled := make([]uint64, n) // w_i * n: the mean column holds exactly W
	var small, large []int32
	for i, s := range p.cand {
		t.total += uint64(s.weight)
		scaled[i] = uint64(s.weight) * uint64(n)
	}
	for i := range scaled {
		if scaled[i] < t.total {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.prob[s], t.alias[s] = scaled[s], l
		scaled[l] -= t.total - scaled[s]
		if scaled[l] < t.total {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		t.prob[i], t.alias[i] = t.total, i // full columns (and rounding's leftovers)
	}
}

// draw returns a candidate with probability w_i/W.
func (t *twos) draw(p *picker) *slot {
	c := p.st.rand(uint64(len(t.prob)))
	if p.st.rand(t.total) < t.prob[c] {
		return p.cand[c]
	}
	return p.cand[t.alias[c]]
}

func (t *twos) pick(p *picker, _ Request) *slot {
	if t.total == 0 {
		return nil
	}
	a, b := t.draw(p), t.draw(p)
	switch ea, eb := a.eligible(), b.eligible(); {
	case ea && eb:
		if a.b.overhead()*int64(b.weight) <= b.b.overhead()*int64(a.weight) {
			return a
		}
		return b
	case ea:
		return a
	case eb:
		return b
	}
	// Both draws were overloaded: the least loaded eligible candidate.
	var best *slot
	var bestOH int64
	for _, s := range p.cand {
		if !s.eligible() {
			continue
		}
		if oh := s.b.overhead(); best == nil || oh*int64(best.weight) < bestOH*int64(s.weight) {
			best, bestOH = s, oh
		}
	}
	return best
}
