// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// lc is least connection (ip_vs_lc.c): the candidate with the smallest
// overhead OH = 256*active + inactive. Weights above zero are ignored;
// weight 0 is never picked.
type lc struct{}

func (lc) keys() keyKind   { return keyLC }
func (lc) prepare(*picker) {}

func (lc) pick(p *picker, _ Request) *slot { return p.candAt(p.minKey()) }

// candAt is p.cand[i], or nil for -1.
func (p *picker) candAt(i int) *slot {
	if i < 0 {
		return nil
	}
	return p.cand[i]
}
