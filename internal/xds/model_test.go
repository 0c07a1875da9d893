// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/svcreg/svcreg/internal/servicemodel"
	"github.com/svcreg/svcreg/internal/servicemodel/modeltest"
)

// TestServiceModel runs the service model's table against the
// ClusterLoadAssignment: what takes new traffic HEALTHY, the last resort
// DRAINING, the rest absent (quiesced ones too: an EDS weight is at
// least 1).
func TestServiceModel(t *testing.T) {
	for _, c := range modeltest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			svc := modeltest.Service(false)
			cla := assignment("web.shop:443", servicemodel.Backends(c.Proto(), c.Port(svc)), nil)
			got := map[string]corev3.HealthStatus{}
			for _, loc := range cla.GetEndpoints() {
				for _, lb := range loc.GetLbEndpoints() {
					sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
					got[net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))] = lb.GetHealthStatus()
				}
			}
			want := map[string]corev3.HealthStatus{}
			for _, e := range c.Endpoints {
				addr := net.JoinHostPort(e.IP, strconv.Itoa(int(c.EndpointPort())))
				switch e.Want {
				case modeltest.Active:
					want[addr] = corev3.HealthStatus_HEALTHY
				case modeltest.Fallback:
					want[addr] = corev3.HealthStatus_DRAINING
				}
			}
			if !maps.Equal(got, want) {
				t.Errorf("endpoints %v, want %v", got, want)
			}
		})
	}
}

// TestTopology runs the topology table against the assignments each
// zone's clients get: the endpoints the rule routes them to at priority 0,
// the others at 1 (gRFC A27 failover). xDS knows a client's zone (its
// bootstrap's locality), not its node in svcreg's sense: PreferSameNode
// acts as PreferSameZone, and internalTrafficPolicy Local is for the SDK
// and the node agent (docs/health.md); those cases expect what the zone
// alone decides.
func TestTopology(t *testing.T) {
	for _, c := range modeltest.TopologyCases {
		t.Run(c.Name, func(t *testing.T) {
			c.ClientNode = "" // xDS sees zones only
			svc := modeltest.TopologyService(c)
			eps := modeltest.TopologyEndpoints(c)
			want, _ := servicemodel.Route(svc, servicemodel.Backends(eps, svc.GetPorts()[0]), servicemodel.Locality{Zone: c.ClientZone})
			res := buildService(svc, eps)
			cla := res.assignmentIn(c.ClientZone, "web.shop:80")
			var preferred []string
			for _, loc := range cla.GetEndpoints() {
				if loc.GetPriority() == 0 {
					preferred = append(preferred, loc.GetLocality().GetSubZone())
				}
			}
			var wantNames []string
			for _, b := range want {
				wantNames = append(wantNames, b.Endpoint.GetInstance())
			}
			if !slices.Equal(preferred, wantNames) {
				t.Errorf("priority 0 %v, want %v", preferred, wantNames)
			}
		})
	}
}
