// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// sed is shortest expected delay (ip_vs_sed.c): the candidate with the
// smallest (active+1)/w; inactive RPCs do not count.
type sed struct{}

func (sed) keys() keyKind   { return keySED }
func (sed) prepare(*picker) {}

func (sed) pick(p *picker, _ Request) *slot { return p.candAt(p.minKey()) }
