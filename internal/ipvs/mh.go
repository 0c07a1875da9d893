// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// mh is Maglev hashing (ip_vs_mh.c) of the source key, weights by turns. A
// quiesced endpoint (weight 0) keeps its table entries at its last weight
// (the kernel's last_weight), so quiescing one moves no other key: its
// own keys fail, or with fallback take their next choice.
type mh struct {
	t       *hashTable
	members []*slot
}

func (*mh) keys() keyKind { return keyNone }

func (h *mh) prepare(p *picker) {
	h.t, h.members = p.hashMembers(p.st.cfg.MHTableSize, func(s *slot) uint32 {
		if s.weight > 0 {
			return s.weight
		}
		return s.b.lastWeight
	})
}

func (h *mh) pick(p *picker, req Request) *slot {
	return hashPick(h.t, h.members, req.Source, p.cfg.Fallback)
}
