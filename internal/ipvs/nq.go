// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// nq is never queue (ip_vs_nq.c): the first idle candidate (no active
// RPC), whatever its weight; when none is idle, sed's choice. An idle
// candidate's key is 0, so one scan does both.
type nq struct{}

func (nq) keys() keyKind   { return keyNQ }
func (nq) prepare(*picker) {}

func (nq) pick(p *picker, _ Request) *slot { return p.candAt(p.minKey()) }
