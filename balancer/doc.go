// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package balancer is the "ipvs" gRPC load-balancing policy: the 14
// schedulers of Linux IPVS (net/netfilter/ipvs, ipvsadm(8)) picking a
// backend per RPC: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf,
// mh and twos, with weights, quiescing (weight 0), overload thresholds,
// session persistence and Kubernetes' terminating-endpoint fallback
// (KEP-1669). The semantics, and where they deviate from the kernel, are
// those of docs/ipvs.md.
//
//	{"loadBalancingConfig":[{"ipvs":{"scheduler":"wlc"}}]}
//
// # Design
//
// The policy composes grpc-go's endpointsharding with a pick_first child
// per endpoint, as round_robin and least_request do: endpoint updates never
// re-dial the endpoints that stay, and health checking works as in the
// built-in policies. The policy intercepts the children's states and
// builds its own picker from the READY ones.
//
// What must survive a picker rebuild lives in the balancer, not in the
// picker: one backend record per endpoint address with its counters
// (outstanding and recently completed RPCs, the overload flag), the rr
// cursor, the wrr cycle, the lblc/lblcr tables, the persistence table and
// the hash tables. A picker is an immutable snapshot plus atomics. Pick
// never blocks and, on a hit of any table, allocates nothing: every
// backend (and every persistence entry) carries a preallocated Done
// function.
//
// The least-load schedulers (lc, wlc, sed, nq and the wlc step of lblc and
// lblcr) keep a per-picker array of 64-bit keys, one per backend, ordered
// as the scheduler's ratio (for example OH/w as a float64 whose bits sort
// as integers), refreshed by the picks and completions of that backend.
// A pick is then one linear scan over contiguous memory. Ratios are exact
// for fewer than 4096 outstanding RPCs per backend: two different ratios
// of that size never round to the same float64.
//
// A client sees only its own RPCs: lc, wlc, sed, nq and ovf decide on this
// client's counts, not the backend's total load. For large fleets with many
// clients, twos (the power of two choices) balances well without that
// knowledge.
package balancer
