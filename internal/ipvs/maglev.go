// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"math/bits"
)

// hashTable is a Maglev lookup table (Eisenbud et al., NSDI 2016; the
// kernel's ip_vs_mh.c): every entry names a member, each member owns
// entries in proportion to its weight, and a member's entries follow its
// own pseudo-random permutation of the table, so that removing one of N
// members moves little more than its own 1/N of the keys. It is built from
// the members in canonical order, so every client of a fleet builds the
// same table.
type hashTable struct {
	fp      uint64
	members []string // addresses, canonical order
	table   []int32  // member index of each entry
}

// newHashTable builds a table of size m (a prime) over members with the
// given weights (> 0).
func newHashTable(fp uint64, members []string, weights []uint64, m int) *hashTable {
	t := &hashTable{fp: fp, members: members, table: make([]int32, m)}
	n := len(members)
	if n == 0 {
		t.table = nil
		return t
	}
	for i := range t.table {
		t.table[i] = -1
	}
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	credit := make([]uint64, n)
	var total uint64
	for i, addr := range members {
		h := hashString(addr)
		offset[i] = h % uint64(m)
		skip[i] = mix(h, 0x5bd1e995)%uint64(m-1) + 1
		total += weights[i]
	}
	// Each round a member places one entry per `unit` of weight it has
	// accumulated, so shares follow the weights and one round places
	// about n entries whatever the weights.
	unit := max(1, total/uint64(n))
	for filled := 0; filled < m; {
		for i := 0; i < n && filled < m; i++ {
			credit[i] += weights[i]
			for credit[i] >= unit && filled < m {
				credit[i] -= unit
				c := (offset[i] + next[i]*skip[i]) % uint64(m)
				for t.table[c] >= 0 {
					next[i]++
					c = (offset[i] + next[i]*skip[i]) % uint64(m)
				}
				t.table[c] = int32(i)
				next[i]++
				filled++
			}
		}
	}
	return t
}

// position maps a hash to an entry uniformly, with a multiplication
// instead of a division (Lemire's reduction).
func (t *hashTable) position(h uint64) uint64 {
	hi, _ := bits.Mul64(h, uint64(len(t.table)))
	return hi
}

// tableSize is the table size for n members: at least size, and at least
// 100 entries per member for an even spread, rounded up to a prime.
func tableSize(size, n int) int {
	m := max(size, 100*n)
	if m > maxTableSize {
		m = maxTableSize
	}
	for !isPrime(m) {
		m++
	}
	return m
}

// hashMembers builds (or reuses from st) the table over p's endpoints
// chosen by weightOf (0 leaves an endpoint out), and maps its members to
// p's slots. Terminating endpoints are members only when they are the
// candidates (no ready one has a weight: KEP-1669).
func (p *picker) hashMembers(size int, weightOf func(*slot) uint32) (*hashTable, []*slot) {
	var members []*slot
	for i := range p.slots {
		s := &p.slots[i]
		if (!s.terminating || p.fallback) && weightOf(s) > 0 {
			members = append(members, s)
		}
	}
	m := tableSize(size, len(members))
	fp := mix(fingerprint(members, weightOf), uint64(m))
	t := p.st.hash
	if t == nil || t.fp != fp {
		addrs := make([]string, len(members))
		weights := make([]uint64, len(members))
		for i, s := range members {
			addrs[i], weights[i] = s.addr, uint64(weightOf(s))
		}
		t = newHashTable(fp, addrs, weights, m)
		p.st.hash = t
	}
	return t, members
}

// hashPick looks key up: the member its entry names when available, or
// connecting while that member is still connecting (the RPC waits for it);
// when the member failed, is quiesced or overloaded: with fallback the
// next available member along the table (the key's next choice), else
// nil.
func hashPick(t *hashTable, members []*slot, key uint64, fallback bool) *slot {
	if len(t.table) == 0 {
		return nil
	}
	pos := t.position(key)
	s := members[t.table[pos]]
	switch {
	case s.ready && s.eligible():
		return s
	case !s.ready && !s.failed && s.eligible():
		return connecting
	case !fallback:
		return nil
	}
	m := uint64(len(t.table))
	for k := uint64(1); k < m; k++ {
		if s := members[t.table[(pos+k)%m]]; s.ready && s.eligible() {
			return s
		}
	}
	return nil
}
