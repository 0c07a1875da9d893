// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// ovf is weighted overflow (ip_vs_ovf.c): the highest-weight eligible
// candidate whose active count does not exceed its weight. With the
// kernel's "<=", a backend can reach weight+1 outstanding RPCs; when every
// candidate is past its weight there is no destination.
type ovf struct {
	order []*slot
}

func (*ovf) keys() keyKind { return keyNone }

func (o *ovf) prepare(p *picker) { o.order = byWeightDesc(p.cand) }

func (o *ovf) pick(_ *picker, _ Request) *slot {
	for _, s := range o.order {
		if s.eligible() && s.b.activeCount() <= int64(s.weight) {
			return s
		}
	}
	return nil
}
