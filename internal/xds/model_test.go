// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds

import (
	"maps"
	"net"
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

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
			cla := assignment("web.shop:443", c.Port(svc), c.Proto())
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
