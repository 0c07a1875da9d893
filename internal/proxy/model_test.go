// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/svcreg/svcreg/internal/servicemodel"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/servicemodel/modeltest"
)

// TestServiceModel runs the service model's table against the node
// agent's plan: the frontend of the case's port has exactly the backends
// the model gives traffic; the userspace data plane's engine picks (per
// connection) exactly those that take new traffic, and the nftables data
// plane gives slots of its random choice to exactly those.
func TestServiceModel(t *testing.T) {
	for _, c := range modeltest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			svc := modeltest.Service(false)
			view := endpointwatch.View{Service: svc, Endpoints: map[string]*svcregv1.Endpoint{}}
			for _, ep := range c.Proto() {
				view.Endpoints[ep.GetInstance()] = ep
			}
			fronts, errs := plan(map[string]endpointwatch.View{"shop/web": view}, "", servicemodel.Locality{})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			sp := c.Port(svc)
			f := fronts[frontKey{"tcp", net.JoinHostPort(svc.GetClusterIp(), strconv.Itoa(int(sp.GetPort())))}]
			if f == nil {
				t.Fatalf("no frontend for port %d among %v", sp.GetPort(), fronts)
			}
			present := map[string]bool{}
			for _, b := range f.backends {
				present[b.Addr] = true
			}
			var active []string
			for _, e := range c.Endpoints {
				addr := net.JoinHostPort(e.IP, strconv.Itoa(int(c.EndpointPort())))
				if present[addr] != (e.Want != modeltest.None) {
					t.Errorf("%s: a backend: %v, want traffic %v", e.Name, present[addr], e.Want)
				}
				if e.Want == modeltest.Active {
					active = append(active, addr)
				}
			}
			slices.Sort(active)
			engine := ipvs.New(f.config, ipvs.Options{})
			defer engine.Close()
			p := engine.Update(nil, engineBackends(f.backends))
			picked := map[string]bool{}
			for i := range 40 {
				k := ipvs.Hash(strconv.Itoa(i))
				if got, err := p.Pick(ipvs.Request{Source: k, Dest: k}); err == nil {
					picked[got.Addr] = true
				}
			}
			var userspace, nft []string
			for a := range picked {
				userspace = append(userspace, a)
			}
			for _, i := range slices.Compact(weightSlots(f)) {
				nft = append(nft, f.backends[i].Addr)
			}
			slices.Sort(userspace)
			slices.Sort(nft)
			nft = slices.Compact(nft)
			if !slices.Equal(userspace, active) {
				t.Errorf("userspace picked %v, want %v", userspace, active)
			}
			if !slices.Equal(nft, active) {
				t.Errorf("nftables gives slots to %v, want %v", nft, active)
			}
		})
	}
}

// TestTopology runs the topology table against the node agent: the
// agent's node and zone decide the backends of its frontends.
func TestTopology(t *testing.T) {
	for _, c := range modeltest.TopologyCases {
		t.Run(c.Name, func(t *testing.T) {
			svc := modeltest.TopologyService(c)
			view := endpointwatch.View{Service: svc, Endpoints: map[string]*svcregv1.Endpoint{}}
			for _, ep := range modeltest.TopologyEndpoints(c) {
				view.Endpoints[ep.GetInstance()] = ep
			}
			fronts, errs := plan(map[string]endpointwatch.View{"shop/web": view}, "", servicemodel.Locality{Zone: c.ClientZone, Node: c.ClientNode})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			f := fronts[frontKey{"tcp", "10.96.0.10:80"}]
			if f == nil {
				t.Fatalf("no frontend among %v", fronts)
			}
			var got []string
			for _, b := range f.backends {
				got = append(got, b.Endpoint.GetInstance())
			}
			if !slices.Equal(got, c.Want) {
				t.Errorf("backends %v, want %v", got, c.Want)
			}
		})
	}
}
