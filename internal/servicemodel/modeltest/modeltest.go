// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package modeltest is the service model's rules as one flat table: a
// service port, endpoints in every combination of conditions
// (ready, serving, terminating, as the store derives them with and
// without publishNotReadyAddresses), weights and ports, and what each
// consumer must make of them. The resolver, xDS, the node agent and DNS
// each run the table against their own output, so a consumer that
// disagrees with the model fails its own test.
package modeltest

import (
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// Traffic is what one endpoint gets on the case's port.
type Traffic int

const (
	// None: no traffic (not ready and not serving, the port missing).
	None Traffic = iota
	// Active: takes new traffic.
	Active
	// Fallback: terminating and serving, while a ready endpoint can take
	// requests: only when none can (the engine picks it as a last resort;
	// xDS publishes it DRAINING).
	Fallback
	// Quiesced: weight 0: kept (its requests finish) but never picked
	// (xDS leaves it out: an EDS weight is at least 1).
	Quiesced
)

// Endpoint is one endpoint of a case and what it should get.
type Endpoint struct {
	Name                      string
	IP                        string
	Ready, Serving, Terminate bool
	Weight                    uint32
	HasPort                   bool
	// Want is its traffic on the case's port; DNS publishes it (A,
	// AAAA, SRV of a headless service) when Published.
	Want      Traffic
	Published bool
}

// Case is a service port and its endpoints.
type Case struct {
	Name string
	// Port is the case's port: by name ("grpc") or, with PortName empty,
	// by number.
	PortName   string
	PortNumber int32
	Endpoints  []Endpoint
}

// Service is every case's service: headless or not, two named ports.
func Service(headless bool) *svcregv1.Service {
	svc := &svcregv1.Service{Name: "web", Namespace: "shop", ClusterIp: "10.96.0.10",
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}, {Name: "http", Port: 80, TargetPort: "8080"}}}
	if headless {
		svc.ClusterIp = "None"
	}
	return svc
}

// Port is a case's service port.
func (c Case) Port(svc *svcregv1.Service) *svcregv1.ServicePort {
	for _, p := range svc.GetPorts() {
		if c.PortName != "" && p.GetName() == c.PortName || c.PortName == "" && p.GetPort() == c.PortNumber {
			return p
		}
	}
	return nil
}

// Proto is the case's endpoints as the store derives them.
func (c Case) Proto() []*svcregv1.Endpoint {
	var out []*svcregv1.Endpoint
	for _, e := range c.Endpoints {
		ep := &svcregv1.Endpoint{Instance: e.Name, Ip: e.IP, Ready: proto.Bool(e.Ready), Serving: proto.Bool(e.Serving),
			Terminating: e.Terminate, Weight: proto.Uint32(e.Weight), Zone: "z1", Hostname: e.Name}
		if e.HasPort {
			ep.Ports = []*svcregv1.EndpointPort{{Name: "grpc", Port: 8443}, {Name: "http", Port: 8080}}
		}
		out = append(out, ep)
	}
	return out
}

// EndpointPort is the endpoint port the case's service port reaches.
func (c Case) EndpointPort() int32 {
	if c.PortName == "grpc" || c.PortNumber == 443 {
		return 8443
	}
	return 8080
}

func ep(name, ip string, ready, serving, terminating bool, weight uint32, want Traffic) Endpoint {
	return Endpoint{Name: name, IP: ip, Ready: ready, Serving: serving, Terminate: terminating, Weight: weight, HasPort: true,
		Want: want, Published: ready}
}

// Cases are the rules, one row each. The store's derivation already
// folds publishNotReadyAddresses into ready (ready = publish ||
// serving && !terminating: KEP-1672), so its cases are the rows whose
// endpoints are ready while not serving.
var Cases = []Case{
	{Name: "ready endpoints, by port name", PortName: "grpc", Endpoints: []Endpoint{
		ep("a", "10.0.0.1", true, true, false, 1, Active),
		ep("b", "10.0.0.2", true, true, false, 3, Active),
	}},
	{Name: "the same, by port number", PortNumber: 80, Endpoints: []Endpoint{
		ep("a", "10.0.0.1", true, true, false, 1, Active),
		ep("b", "10.0.0.2", true, true, false, 3, Active),
	}},
	{Name: "not ready, not serving: no traffic, not in DNS", PortName: "grpc", Endpoints: []Endpoint{
		ep("a", "10.0.0.1", true, true, false, 1, Active),
		ep("b", "10.0.0.2", false, false, false, 1, None),
	}},
	{Name: "terminating and serving beside a ready one: the last resort (KEP-1669)", PortName: "grpc", Endpoints: []Endpoint{
		ep("a", "10.0.0.1", true, true, false, 1, Active),
		ep("b", "10.0.0.2", false, true, true, 1, Fallback),
	}},
	{Name: "only terminating and serving ones: they take the traffic", PortName: "grpc", Endpoints: []Endpoint{
		ep("a", "10.0.0.1", false, true, true, 1, Active),
		ep("b", "10.0.0.2", false, true, true, 2, Active),
		ep("c", "10.0.0.3", false, false, true, 1, None),
	}},
	{Name: "a ready one quiesced: the terminating ones take the traffic", PortName: "grpc", Endpoints: []Endpoint{
		ep("a", "10.0.0.1", true, true, false, 0, Quiesced),
		ep("b", "10.0.0.2", false, true, true, 1, Active),
	}},
	{Name: "publishNotReadyAddresses: ready though not serving", PortName: "grpc", Endpoints: []Endpoint{
		ep("a", "10.0.0.1", true, false, false, 1, Active),
		ep("b", "10.0.0.2", true, true, false, 1, Active),
	}},
	{Name: "an instance without the named port", PortName: "grpc", Endpoints: []Endpoint{
		ep("a", "10.0.0.1", true, true, false, 1, Active),
		{Name: "b", IP: "10.0.0.2", Ready: true, Serving: true, Weight: 1, Want: None, Published: true},
	}},
	{Name: "IPv6", PortName: "grpc", Endpoints: []Endpoint{
		ep("a", "2001:db8::1", true, true, false, 1, Active),
		ep("b", "10.0.0.2", true, true, false, 1, Active),
	}},
}
