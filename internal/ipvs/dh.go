// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// dh is destination hashing (ip_vs_dh.c): the destination key (the hashKey
// header, else the method) hashes onto the endpoints, weights ignored but
// for 0, which leaves an endpoint out. There is no fallback: when the
// key's endpoint is unavailable the pick fails, for that key only.
// Deviation: a Maglev table instead of the kernel's 256 buckets tiled by
// position, so that one endpoint leaving moves ~1/N of the keys, not ~90%.
type dh struct {
	t       *hashTable
	members []*slot
}

func (*dh) keys() keyKind { return keyNone }

func (d *dh) prepare(p *picker) {
	d.t, d.members = p.hashMembers(p.st.cfg.MHTableSize, func(s *slot) uint32 { return min(s.weight, 1) })
}

func (d *dh) pick(p *picker, req Request) *slot {
	return hashPick(d.t, d.members, req.Dest, false)
}
