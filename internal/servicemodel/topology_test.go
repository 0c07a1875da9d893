// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package servicemodel

import (
	"slices"
	"testing"

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
