// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package servicemodel

import (
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/servicemodel/modeltest"
)

// TestRoute runs the topology table against the rule itself; the
// consumers run it against theirs.
func TestRoute(t *testing.T) {
	for _, c := range modeltest.TopologyCases {
		t.Run(c.Name, func(t *testing.T) {
			svc := modeltest.TopologyService(c)
			got, why := Route(svc, Backends(modeltest.TopologyEndpoints(c), svc.GetPorts()[0]), Locality{Zone: c.ClientZone, Node: c.ClientNode})
			var names []string
			for _, b := range got {
				names = append(names, b.Endpoint.GetInstance())
			}
			if !slices.Equal(names, c.Want) || (why != "") != c.Why {
				t.Errorf("routed %v (why %q), want %v (why given: %v)", names, why, c.Want, c.Why)
			}
		})
	}
}

// TestZonesWithoutPreference: the zones named are exactly those whose
// clients Route sends out of their zone.
func TestZonesWithoutPreference(t *testing.T) {
	ep := func(name, zone string, ready bool) *svcregv1.Endpoint {
		return &svcregv1.Endpoint{Instance: name, Ip: "10.0.0.1", Zone: zone, Ready: proto.Bool(ready), Weight: proto.Uint32(1),
			Ports: []*svcregv1.EndpointPort{{Name: "grpc", Port: 1}}}
	}
	svc := func(td svcregv1.TrafficDistribution) *svcregv1.Service {
		return &svcregv1.Service{Name: "s", TrafficDistribution: td, Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 1}}}
	}
	eps := []*svcregv1.Endpoint{ep("a1", "a", true), ep("b1", "b", false), ep("c1", "c", true), ep("c2", "c", false), ep("n", "", true)}
	tests := []struct {
		name string
		svc  *svcregv1.Service
		want []string
	}{
		{"no preference", svc(svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_UNSPECIFIED), nil},
		{"same zone: b has no ready endpoint", svc(svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_ZONE), []string{"b"}},
		{"same node counts zones alike", svc(svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_NODE), []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slices.Sorted(maps.Keys(ZonesWithoutPreference(tt.svc, eps)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("zones %v, want %v", got, tt.want)
			}
		})
	}
}
