package balancer

import (
	"sort"

	"google.golang.org/grpc/balancer"
)

// twos is weighted power of two choices (ip_vs_twos.c): two weighted
// random draws among the candidates, the one with the lower OH/w wins
// (the first on ties). Deviation: the draws are unbiased in [0, W), where
// the kernel's [0, W] favours the first backend.
type twos struct {
	cum []uint64 // cumulative weights of the candidates
}

func (*twos) keys() keyKind { return keyNone }

func (t *twos) prepare(p *picker) {
	t.cum = make([]uint64, len(p.cand))
	var sum uint64
	for i, s := range p.cand {
		sum += uint64(s.weight)
		t.cum[i] = sum
	}
}

// draw returns the candidate owning a uniform point of [0, W).
func (t *twos) draw(p *picker) *slot {
	total := t.cum[len(t.cum)-1]
	r := p.st.rand(total)
	return p.cand[sort.Search(len(t.cum), func(i int) bool { return t.cum[i] > r })]
}

func (t *twos) pick(p *picker, _ *balancer.PickInfo) *slot {
	if len(t.cum) == 0 || t.cum[len(t.cum)-1] == 0 {
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
