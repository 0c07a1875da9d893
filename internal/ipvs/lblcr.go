// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"slices"
)

// lblcr is locality-based least connection with replication
// (ip_vs_lblcr.c): a destination key maps to a set of backends. A pick
// takes the set's eligible member with the least OH/w (the most recently
// added on ties); when there is none, or it is lblc-overloaded, wlc's pick
// joins the set and takes the RPC. A set of more than one member that was
// not modified for lblcExpiration loses its most loaded member, one per
// period.
type lblcr struct{}

func (lblcr) keys() keyKind   { return keyWLC }
func (lblcr) prepare(*picker) {}

func (lblcr) pick(p *picker, req Request) *slot {
	key := req.Dest
	now := p.now()
	t := p.lblc
	e := t.get(key)
	if e == nil {
		s := p.candAt(p.minKey())
		if s == nil {
			return nil
		}
		e = &affinity{key: key}
		e.set.Store(&[]*backend{s.b})
		e.lastUse.Store(now)
		e.lastMod.Store(now)
		t.put(e)
		return s
	}
	e.lastUse.Store(now)
	set := *e.set.Load()
	if len(set) > 1 && now-e.lastMod.Load() > int64(p.cfg.LBLCExpiration) {
		if worst := p.mostLoaded(set); worst != nil {
			t.modifySet(e, func(set []*backend) []*backend {
				return slices.DeleteFunc(set, func(b *backend) bool { return b == worst })
			})
			e.lastMod.Store(now)
			set = *e.set.Load()
		}
	}
	if s := p.leastLoaded(set); s != nil && !p.lblcOverloaded(s) {
		return s
	}
	s := p.candAt(p.minKey())
	if s == nil {
		return nil
	}
	t.modifySet(e, func(set []*backend) []*backend {
		if !slices.Contains(set, s.b) {
			set = append(set, s.b)
		}
		return set
	})
	e.lastMod.Store(now)
	return s
}

// leastLoaded is the set's eligible member with the smallest OH/w; on
// ties the most recently added (ip_vs_dest_set_min).
func (p *picker) leastLoaded(set []*backend) *slot {
	var best *slot
	var bestOH int64
	for i := len(set) - 1; i >= 0; i-- {
		s := p.candAt(set[i].candidate(p))
		if s == nil || !s.eligible() {
			continue
		}
		oh := s.b.overhead()
		if best == nil || oh*int64(best.weight) < bestOH*int64(s.weight) {
			best, bestOH = s, oh
		}
	}
	return best
}

// mostLoaded is the member with the largest OH/w (ip_vs_dest_set_max);
// members that left count as the most loaded of all.
func (p *picker) mostLoaded(set []*backend) *backend {
	var worst *backend
	var worstOH int64
	var worstW uint32
	for _, b := range set {
		s := p.candAt(b.candidate(p))
		if s == nil || s.weight == 0 {
			return b
		}
		oh := b.overhead()
		if worst == nil || oh*int64(worstW) > worstOH*int64(s.weight) {
			worst, worstOH, worstW = b, oh, s.weight
		}
	}
	return worst
}
