// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package ipvs is the vocabulary of the 14 Linux IPVS schedulers
// (ipvsadm(8)) that the registry validates, the ipvs balancer implements
// and the resolver and the proxy configure. Their semantics are in
// docs/ipvs.md.
package ipvs

import "slices"

// Schedulers are the scheduler names, as ipvsadm(8) spells them.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// DefaultScheduler is a service's scheduler when it names none (ipvsadm's
// own default).
const DefaultScheduler = "rr"

// Valid reports whether name is a scheduler.
func Valid(name string) bool { return slices.Contains(Schedulers, name) }

// HasFallback reports whether a scheduler takes the fallback option: the
// source hashing schedulers, whose key may map to an unavailable backend.
func HasFallback(name string) bool { return name == "sh" || name == "mh" }

// Hashing reports whether a scheduler maps a request key onto the backends
// by a hash (dh, sh, mh): a key's backend is fixed while the set is.
func Hashing(name string) bool { return name == "dh" || name == "sh" || name == "mh" }

// ReadsLoad reports whether a scheduler decides on each backend's
// outstanding requests (or connections).
func ReadsLoad(name string) bool {
	switch name {
	case "lc", "wlc", "sed", "nq", "ovf", "lblc", "lblcr", "twos":
		return true
	}
	return false
}

// UsesInactive reports whether a scheduler also counts inactive ones: the
// overhead schedulers, whose load is 256*active + inactive
// (include/net/ip_vs.h, ip_vs_dest_conn_overhead).
func UsesInactive(name string) bool {
	switch name {
	case "lc", "wlc", "lblc", "lblcr", "twos":
		return true
	}
	return false
}
