// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"slices"
)

// fo is weighted failover (ip_vs_fo.c): the eligible candidate with the
// highest weight, load ignored; the earliest on ties.
type fo struct {
	order []*slot // candidates by weight, highest first (stable)
}

func (*fo) keys() keyKind { return keyNone }

func (f *fo) prepare(p *picker) { f.order = byWeightDesc(p.cand) }

func (f *fo) pick(_ *picker, _ Request) *slot {
	for _, s := range f.order {
		if s.eligible() {
			return s
		}
	}
	return nil
}

// byWeightDesc orders candidates by weight, highest first, keeping the
// canonical order among equals.
func byWeightDesc(cand []*slot) []*slot {
	order := slices.Clone(cand)
	slices.SortStableFunc(order, func(a, b *slot) int {
		switch {
		case a.weight > b.weight:
			return -1
		case a.weight < b.weight:
			return 1
		}
		return 0
	})
	return order
}
