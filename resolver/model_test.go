// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package resolver

import (
	"net"
	"slices"
	"strconv"
	"testing"

	ipvsbalancer "github.com/svcreg/svcreg/balancer"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/servicemodel"
	"github.com/svcreg/svcreg/internal/servicemodel/modeltest"
)

// TestServiceModel runs the service model's table against the resolver:
// its endpoints are exactly those the model gives traffic (with their
// weights and the terminating flag), and the scheduler engine fed with
// them (as the ipvs policy is) picks exactly those that take new traffic.
func TestServiceModel(t *testing.T) {
	for _, c := range modeltest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			svc := modeltest.Service(false)
			view := endpointwatch.View{Service: svc, Endpoints: map[string]*svcregv1.Endpoint{}}
			for _, ep := range c.Proto() {
				view.Endpoints[ep.GetInstance()] = ep
			}
			eps, err := endpointsFor(Target{Service: "web", Namespace: "shop", PortName: c.PortName, Port: c.PortNumber}, view, servicemodel.Locality{})
			if err != nil {
				t.Fatal(err)
			}
			var backends []ipvs.Backend
			present := map[string]bool{}
			for _, e := range eps {
				info, _ := ipvsbalancer.GetEndpointInfo(e)
				backends = append(backends, ipvs.Backend{Addr: e.Addresses[0].Addr, Info: info})
				present[e.Addresses[0].Addr] = true
			}
			var active []string
			for _, e := range c.Endpoints {
				addr := net.JoinHostPort(e.IP, strconv.Itoa(int(c.EndpointPort())))
				if present[addr] != (e.Want != modeltest.None) {
					t.Errorf("%s: given to the policy: %v, want traffic %v", e.Name, present[addr], e.Want)
				}
				if e.Want == modeltest.Active {
					active = append(active, addr)
				}
			}
			cfg, _ := ipvs.ParseConfig([]byte(`{"scheduler":"rr"}`))
			engine := ipvs.New(cfg, ipvs.Options{})
			defer engine.Close()
			p := engine.Update(nil, backends)
			picked := map[string]bool{}
			for range 20 {
				if got, err := p.Pick(ipvs.Request{}); err == nil {
					picked[got.Addr] = true
				}
			}
			var got []string
			for a := range picked {
				got = append(got, a)
			}
			slices.Sort(got)
			slices.Sort(active)
			if !slices.Equal(got, active) {
				t.Errorf("picked %v, want %v", got, active)
			}
		})
	}
}

// TestTopology runs the topology table against the resolver: the client's
// locality (WithLocality, $SVCREG_ZONE and $SVCREG_NODE) decides which
// endpoints its ClientConns get.
func TestTopology(t *testing.T) {
	for _, c := range modeltest.TopologyCases {
		t.Run(c.Name, func(t *testing.T) {
			svc := modeltest.TopologyService(c)
			view := endpointwatch.View{Service: svc, Endpoints: map[string]*svcregv1.Endpoint{}}
			names := map[string]string{}
			for _, ep := range modeltest.TopologyEndpoints(c) {
				view.Endpoints[ep.GetInstance()] = ep
				names[net.JoinHostPort(ep.GetIp(), "8080")] = ep.GetInstance()
			}
			eps, err := endpointsFor(Target{Service: "web", Namespace: "shop", PortName: "http"}, view,
				servicemodel.Locality{Zone: c.ClientZone, Node: c.ClientNode})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range eps {
				got = append(got, names[e.Addresses[0].Addr])
			}
			if !slices.Equal(got, c.Want) {
				t.Errorf("endpoints %v, want %v", got, c.Want)
			}
		})
	}
}
