// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package resolver

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/svcreg/svcreg/internal/servicemodel"

	"google.golang.org/protobuf/proto"

	ipvs "github.com/svcreg/svcreg/balancer"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/endpointwatch"
)

func TestServiceConfigJSON(t *testing.T) {
	tests := []struct {
		svc  *svcregv1.Service
		want string
	}{
		{&svcregv1.Service{Scheduler: "wlc"}, `{"loadBalancingConfig":[{"ipvs":{"scheduler":"wlc"}}]}`},
		{&svcregv1.Service{}, `{"loadBalancingConfig":[{"ipvs":{"scheduler":"rr"}}]}`},
		{&svcregv1.Service{Scheduler: "sh", SchedulerOptions: &svcregv1.SchedulerOptions{HashKey: "x-user", SecondaryKey: "x-port", Fallback: true}},
			`{"loadBalancingConfig":[{"ipvs":{"scheduler":"sh","hashKey":"x-user","secondaryKey":"x-port","fallback":true}}]}`},
		{&svcregv1.Service{Scheduler: "rr", SchedulerOptions: &svcregv1.SchedulerOptions{PersistenceTimeoutSeconds: 300}},
			`{"loadBalancingConfig":[{"ipvs":{"scheduler":"rr","persistenceTimeout":"5m0s"}}]}`},
		{&svcregv1.Service{Scheduler: "rr", SessionAffinity: svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP, SessionAffinityTimeoutSeconds: proto.Int32(10800)},
			`{"loadBalancingConfig":[{"ipvs":{"scheduler":"rr","persistenceTimeout":"3h0m0s"}}]}`},
	}
	for _, tt := range tests {
		got := ServiceConfigJSON(tt.svc)
		if got != tt.want {
			t.Errorf("got %s\nwant %s", got, tt.want)
		}
		// The policy accepts what the resolver sends.
		var sc struct {
			LoadBalancingConfig []map[string]json.RawMessage `json:"loadBalancingConfig"`
		}
		if err := json.Unmarshal([]byte(got), &sc); err != nil {
			t.Fatal(err)
		}
		if _, err := ipvs.ParseConfig(sc.LoadBalancingConfig[0]["ipvs"]); err != nil {
			t.Errorf("%s: %v", got, err)
		}
	}
}

func TestEndpointsFor(t *testing.T) {
	svc := &svcregv1.Service{Name: "web", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443}, {Name: "http", Port: 80}}}
	ep := func(name, ip string, ready, serving, terminating bool, ports ...*svcregv1.EndpointPort) *svcregv1.Endpoint {
		return &svcregv1.Endpoint{Instance: name, Ip: ip, Ready: proto.Bool(ready), Serving: proto.Bool(serving), Terminating: terminating,
			Weight: proto.Uint32(3), Zone: "z", Ports: ports}
	}
	grpcPort := &svcregv1.EndpointPort{Name: "grpc", Port: 8443}
	view := endpointwatch.View{Service: svc, Endpoints: map[string]*svcregv1.Endpoint{
		"b":        ep("b", "10.0.0.2", true, true, false, grpcPort),
		"a":        ep("a", "10.0.0.1", true, true, false, grpcPort),
		"draining": ep("draining", "10.0.0.3", false, true, true, grpcPort),
		"notready": ep("notready", "10.0.0.4", false, false, false, grpcPort),
		"noport":   ep("noport", "10.0.0.5", true, true, false),
		"v6":       ep("v6", "2001:db8::1", true, true, false, grpcPort),
	}}
	eps, err := endpointsFor(Target{Service: "web", Namespace: "shop", PortName: "grpc"}, view, servicemodel.Locality{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range eps {
		info, _ := ipvs.GetEndpointInfo(e)
		got = append(got, e.Addresses[0].Addr+map[bool]string{true: "(terminating)", false: ""}[info.Terminating])
		if info.Weight != 3 || info.Zone != "z" {
			t.Errorf("attributes %+v", info)
		}
	}
	if strings.Join(got, " ") != "10.0.0.1:8443 10.0.0.2:8443 10.0.0.3:8443(terminating) [2001:db8::1]:8443" {
		t.Errorf("got %v", got)
	}
	for _, tt := range []struct {
		target  Target
		wantErr string
	}{
		{Target{Service: "web", Namespace: "shop"}, "has 2 ports"},
		{Target{Service: "web", Namespace: "shop", PortName: "nope"}, "no port nope"},
		{Target{Service: "web", Namespace: "shop", Port: 9}, "no port 9"},
	} {
		if _, err := endpointsFor(tt.target, view, servicemodel.Locality{}); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%+v: err %v, want %q", tt.target, err, tt.wantErr)
		}
	}
	byNumber, err := endpointsFor(Target{Service: "web", Namespace: "shop", Port: 443}, view, servicemodel.Locality{})
	if err != nil || len(byNumber) != 4 {
		t.Errorf("by service port number: %d endpoints, %v", len(byNumber), err)
	}
	ext := endpointwatch.View{Service: &svcregv1.Service{Type: svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, ExternalName: "db.example.com.",
		Ports: []*svcregv1.ServicePort{{Port: 5432}}}}
	eps, err = endpointsFor(Target{Service: "db", Namespace: "shop"}, ext, servicemodel.Locality{})
	if err != nil || len(eps) != 1 || eps[0].Addresses[0].Addr != "db.example.com:5432" {
		t.Errorf("external name: %v %v", eps, err)
	}
}
