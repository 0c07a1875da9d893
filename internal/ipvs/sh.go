// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// sh is source hashing (ip_vs_sh.c): the source key (the hashKey header,
// else the client identity) hashes onto the endpoints in proportion to
// their weights. When the key's endpoint is unavailable the pick fails,
// or with fallback takes the key's next choice. Deviation: a weighted
// Maglev table, for minimal disruption (as dh).
type sh struct {
	t       *hashTable
	members []*slot
}

func (*sh) keys() keyKind { return keyNone }

func (h *sh) prepare(p *picker) {
	h.t, h.members = p.hashMembers(p.st.cfg.MHTableSize, func(s *slot) uint32 { return s.weight })
}

func (h *sh) pick(p *picker, req Request) *slot {
	return hashPick(h.t, h.members, req.Source, p.cfg.Fallback)
}
