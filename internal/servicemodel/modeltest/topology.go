// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package modeltest

import (
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// TopologyEndpoint is one endpoint of a topology case.
type TopologyEndpoint struct {
	Name, IP   string
	Zone, Node string
	Ready      bool // else terminating but serving (takes traffic only as a last resort)
}

// TopologyCase is a client's locality, a service's topology rule and its
// endpoints, and the endpoints the client must use.
type TopologyCase struct {
	Name                string
	ClientZone          string
	ClientNode          string
	TrafficDistribution svcregv1.TrafficDistribution
	Local               bool // internal_traffic_policy Local
	LocalFallback       bool
	Endpoints           []TopologyEndpoint
	// Want is the names the client uses (in the endpoints' order); empty:
	// none (Local with no endpoint on the node, no fallback).
	Want []string
	// Why: a preference was asked for and not applied.
	Why bool
}

var threeZones = []TopologyEndpoint{
	{Name: "a1", IP: "10.0.1.1", Zone: "a", Node: "n-a1", Ready: true},
	{Name: "a2", IP: "10.0.1.2", Zone: "a", Node: "n-a2", Ready: true},
	{Name: "b1", IP: "10.0.2.1", Zone: "b", Node: "n-b1", Ready: true},
	{Name: "c1", IP: "10.0.3.1", Zone: "c", Node: "n-c1", Ready: false},
}

const (
	zone        = svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_ZONE
	preferClose = svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_CLOSE
	node        = svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_NODE
)

// TopologyCases is the topology rule as a flat table (docs/health.md,
// "Topology"): the SDK, the node agent and the xDS resources each run it.
var TopologyCases = []TopologyCase{
	{Name: "no preference: every endpoint", ClientZone: "a", Endpoints: threeZones, Want: []string{"a1", "a2", "b1", "c1"}},
	{Name: "PreferSameZone in zone a", ClientZone: "a", TrafficDistribution: zone, Endpoints: threeZones, Want: []string{"a1", "a2"}},
	{Name: "PreferClose is PreferSameZone", ClientZone: "b", TrafficDistribution: preferClose, Endpoints: threeZones, Want: []string{"b1"}},
	{Name: "a zone of draining endpoints falls back to all", ClientZone: "c", TrafficDistribution: zone, Endpoints: threeZones,
		Want: []string{"a1", "a2", "b1", "c1"}, Why: true},
	{Name: "a zone with no endpoint falls back to all", ClientZone: "d", TrafficDistribution: zone, Endpoints: threeZones,
		Want: []string{"a1", "a2", "b1", "c1"}, Why: true},
	{Name: "an unknown zone: all", TrafficDistribution: zone, Endpoints: threeZones, Want: []string{"a1", "a2", "b1", "c1"}, Why: true},
	{Name: "PreferSameNode on n-a2", ClientZone: "a", ClientNode: "n-a2", TrafficDistribution: node, Endpoints: threeZones, Want: []string{"a2"}},
	{Name: "PreferSameNode on an empty node: its zone", ClientZone: "a", ClientNode: "n-a9", TrafficDistribution: node, Endpoints: threeZones,
		Want: []string{"a1", "a2"}, Why: true},
	{Name: "PreferSameNode on an empty node of an empty zone: all", ClientZone: "d", ClientNode: "n-d1", TrafficDistribution: node,
		Endpoints: threeZones, Want: []string{"a1", "a2", "b1", "c1"}, Why: true},
	{Name: "Local on n-b1", ClientZone: "b", ClientNode: "n-b1", Local: true, Endpoints: threeZones, Want: []string{"b1"}},
	{Name: "Local wins over a traffic distribution", ClientZone: "a", ClientNode: "n-b1", Local: true, TrafficDistribution: zone,
		Endpoints: threeZones, Want: []string{"b1"}},
	{Name: "Local on a node with no endpoint: none", ClientZone: "a", ClientNode: "n-a9", Local: true, Endpoints: threeZones,
		Want: nil, Why: true},
	{Name: "Local on a node whose endpoint drains: none", ClientZone: "c", ClientNode: "n-c1", Local: true, Endpoints: threeZones,
		Want: nil, Why: true},
	{Name: "Local with fallback on a node with no endpoint: all", ClientZone: "a", ClientNode: "n-a9", Local: true, LocalFallback: true,
		Endpoints: threeZones, Want: []string{"a1", "a2", "b1", "c1"}, Why: true},
}

// TopologyService is a case's service: one port, 80, selecting app=web.
func TopologyService(c TopologyCase) *svcregv1.Service {
	svc := &svcregv1.Service{Name: "web", Namespace: "shop", Selector: map[string]string{"app": "web"}, ClusterIp: "10.96.0.10",
		Ports:     []*svcregv1.ServicePort{{Name: "http", Port: 80, TargetPort: "8080", Protocol: svcregv1.Protocol_PROTOCOL_TCP}},
		Scheduler: "rr", TrafficDistribution: c.TrafficDistribution, LocalFallback: c.LocalFallback}
	if c.Local {
		svc.InternalTrafficPolicy = svcregv1.InternalTrafficPolicy_INTERNAL_TRAFFIC_POLICY_LOCAL
	}
	return svc
}

// TopologyEndpoints are a case's endpoints as the store derives them.
func TopologyEndpoints(c TopologyCase) []*svcregv1.Endpoint {
	var out []*svcregv1.Endpoint
	for _, e := range c.Endpoints {
		ready, serving := e.Ready, true
		out = append(out, &svcregv1.Endpoint{Service: "web", Namespace: "shop", Instance: e.Name, Ip: e.IP, Ready: &ready, Serving: &serving,
			Terminating: !e.Ready, Weight: ptr(uint32(1)), Zone: e.Zone, Node: e.Node,
			Ports: []*svcregv1.EndpointPort{{Name: "http", Port: 8080, Protocol: svcregv1.Protocol_PROTOCOL_TCP}}})
	}
	return out
}

func ptr[T any](v T) *T { return &v }
