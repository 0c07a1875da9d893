// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// wlc is weighted least connection (ip_vs_wlc.c): the candidate with the
// smallest OH/w. When every candidate is idle, the first.
type wlc struct{}

func (wlc) keys() keyKind   { return keyWLC }
func (wlc) prepare(*picker) {}

func (wlc) pick(p *picker, _ Request) *slot { return p.candAt(p.minKey()) }
