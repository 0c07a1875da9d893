// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package servicemodel

import (
	"fmt"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// Locality is where a client runs: its zone and node. Empty fields are
// unknown.
type Locality struct{ Zone, Node string }

// Route is the topology rule (docs/health.md, "Topology"): of the backends
// that take traffic for a service port, the ones a client at loc uses.
//
//   - internal_traffic_policy Local (KEP-2086): the backends on the
//     client's node; none when it has no ready one, unless local_fallback
//     asks for the cluster's.
//   - traffic_distribution PreferSameZone or PreferClose (KEP-4444): the
//     backends in the client's zone when one of them is ready, else all.
//   - PreferSameNode: the client's node's, else its zone's, else all.
//
// A preferred set counts only when it holds a ready backend with a weight:
// a zone of draining endpoints is not a zone to stay in. why says, when a
// preference was asked for and not applied, what was done instead;
// consumers count and show it.
func Route(svc *svcregv1.Service, bs []Backend, loc Locality) (routed []Backend, why string) {
	if svc.GetInternalTrafficPolicy() == svcregv1.InternalTrafficPolicy_INTERNAL_TRAFFIC_POLICY_LOCAL {
		if loc.Node == "" {
			return bs, "internalTrafficPolicy Local: the client's node is unknown; using every endpoint"
		}
		if local := sameNode(bs, loc.Node); usable(local) {
			return local, ""
		}
		if svc.GetLocalFallback() {
			return bs, fmt.Sprintf("internalTrafficPolicy Local: no ready endpoint on node %q; falling back to the cluster's", loc.Node)
		}
		return nil, fmt.Sprintf("internalTrafficPolicy Local: no ready endpoint on node %q", loc.Node)
	}
	node := false
	switch svc.GetTrafficDistribution() {
	case svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_NODE:
		node = true
	case svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_ZONE, svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_CLOSE:
	default:
		return bs, ""
	}
	if node && loc.Node != "" {
		if local := sameNode(bs, loc.Node); usable(local) {
			return local, ""
		}
	}
	if loc.Zone == "" {
		if node && loc.Node != "" {
			return bs, fmt.Sprintf("no ready endpoint on node %q and the client's zone is unknown; using every zone", loc.Node)
		}
		return bs, "the client's zone is unknown; using every zone"
	}
	if zone := sameZone(bs, loc.Zone); usable(zone) {
		if node && loc.Node != "" {
			return zone, fmt.Sprintf("no ready endpoint on node %q; using zone %q", loc.Node, loc.Zone)
		}
		return zone, ""
	}
	return bs, fmt.Sprintf("no ready endpoint in zone %q; using every zone", loc.Zone)
}

func sameNode(bs []Backend, node string) []Backend {
	var out []Backend
	for _, b := range bs {
		if b.Info.Node == node {
			out = append(out, b)
		}
	}
	return out
}

func sameZone(bs []Backend, zone string) []Backend {
	var out []Backend
	for _, b := range bs {
		if b.Info.Zone == zone {
			out = append(out, b)
		}
	}
	return out
}

// usable: a set with a ready backend that takes new traffic.
func usable(bs []Backend) bool {
	for _, b := range bs {
		if !b.Info.Terminating && b.Info.Weight > 0 {
			return true
		}
	}
	return false
}

// ZonesWithoutPreference are the zones of a service's endpoints whose
// clients cannot keep its traffic_distribution, each with Route's reason
// (describe shows them; the servers count them). None when the service
// prefers nothing. The service's first port stands for all: zones do not
// differ by port.
func ZonesWithoutPreference(svc *svcregv1.Service, eps []*svcregv1.Endpoint) map[string]string {
	if svc.GetTrafficDistribution() == svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_UNSPECIFIED {
		return nil
	}
	var sp *svcregv1.ServicePort
	if ports := svc.GetPorts(); len(ports) > 0 {
		sp = ports[0]
	}
	bs := Backends(eps, sp)
	out := map[string]string{}
	for _, ep := range eps {
		z := ep.GetZone()
		if _, done := out[z]; done || z == "" {
			continue
		}
		if _, why := Route(svc, bs, Locality{Zone: z}); why != "" {
			out[z] = why
		}
	}
	return out
}
