// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// lblc is locality-based least connection (ip_vs_lblc.c): a destination key
// (the hashKey header, else the method) keeps the backend it was first
// given, unless that backend is gone, quiesced or lblc-overloaded; then
// wlc picks a new one, which the key keeps. Deviation: a cached backend
// also honours the thresholds (docs/ipvs.md, "Thresholds"). Entries
// unused for lblcExpiration expire; the table holds at most
// lblcMaxEntries, least recently used out first.
type lblc struct{}

func (lblc) keys() keyKind   { return keyWLC }
func (lblc) prepare(*picker) {}

func (lblc) pick(p *picker, req Request) *slot {
	key := req.Dest
	now := p.now()
	e := p.lblc.get(key)
	if e != nil {
		if s := p.candAt(e.b.Load().candidate(p)); s != nil && s.eligible() && !p.lblcOverloaded(s) {
			e.lastUse.Store(now)
			return s
		}
	}
	s := p.candAt(p.minKey())
	if s == nil {
		return nil
	}
	if e != nil {
		e.b.Store(s.b)
		e.lastUse.Store(now)
		return s
	}
	e = &affinity{key: key}
	e.b.Store(s.b)
	e.lastUse.Store(now)
	p.lblc.put(e)
	return s
}

// lblcOverloaded is the kernel's is_overloaded for lblc and lblcr: more
// active RPCs than its weight, while some candidate is below half of its
// own.
func (p *picker) lblcOverloaded(s *slot) bool {
	if s.b.activeCount() <= int64(s.weight) {
		return false
	}
	for _, c := range p.cand {
		if 2*c.b.activeCount() < int64(c.weight) {
			return true
		}
	}
	return false
}
