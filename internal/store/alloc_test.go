// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

func simpleService(name string) *svcregv1.Service {
	return &svcregv1.Service{Name: name, Namespace: "default", Ports: []*svcregv1.ServicePort{{Port: 80}}}
}

func TestParseIPRange(t *testing.T) {
	tests := []struct {
		cidr    string
		size    uint64
		wantErr string
	}{
		{"10.96.0.0/16", 65534, ""},
		{"10.96.0.0/29", 6, ""},
		{"fd00::/112", 65535, ""},
		{"10.96.0.1/16", 0, "host bits"},
		{"10.0.0.0/8", 0, "too large"},
		{"10.96.0.0/31", 0, "too small"},
		{"nonsense", 0, "service CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.cidr, func(t *testing.T) {
			r, err := ParseIPRange(tt.cidr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || r.Size() != tt.size {
				t.Fatalf("size %d err %v, want %d", r.Size(), err, tt.size)
			}
		})
	}
}

func TestClusterIPAllocation(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/29", "30000-30002") // 6 addresses: .1-.6
	explicit := simpleService("explicit")
	explicit.ClusterIp = "10.96.0.5"
	if got := mustApply(t, s, explicit).Service.GetClusterIp(); got != "10.96.0.5" {
		t.Fatalf("explicit IP: got %s", got)
	}
	tests := []struct {
		name, ip, wantMsg string
	}{
		{"taken", "10.96.0.5", "failed to allocate IP 10.96.0.5: provided IP is already allocated"},
		{"out of range", "10.97.0.5", "is not in the valid range. The range of valid IPs is 10.96.0.0/29"},
		{"network address", "10.96.0.0", "not in the valid range"},
		{"broadcast address", "10.96.0.7", "not in the valid range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := simpleService("svc-" + strings.ReplaceAll(tt.name, " ", "-"))
			svc.ClusterIp = tt.ip
			_, err := s.Apply(cmd(svc))
			assertFieldError(t, err, "service.cluster_ip")
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want %q", err, tt.wantMsg)
			}
		})
	}
	seen := map[string]bool{"10.96.0.5": true}
	for i := 0; i < 5; i++ {
		ip := mustApply(t, s, simpleService(fmt.Sprintf("auto-%d", i))).Service.GetClusterIp()
		if seen[ip] {
			t.Fatalf("IP %s allocated twice", ip)
		}
		seen[ip] = true
	}
	_, err := s.Apply(cmd(simpleService("one-too-many")))
	if !errors.Is(err, ErrRangeFull) {
		t.Fatalf("full range: err = %v, want ErrRangeFull", err)
	}
	headless := simpleService("headless")
	headless.ClusterIp = meta.ClusterIPNone
	mustApply(t, s, headless) // headless needs no IP
	mustApply(t, s, &svcregv1.DeleteServiceRequest{Namespace: "default", Name: "explicit"})
	if got := mustApply(t, s, simpleService("reuse")).Service.GetClusterIp(); got != "10.96.0.5" {
		t.Fatalf("released IP not reused: got %s", got)
	}
	// Changing to EXTERNAL_NAME releases the IP; back to CLUSTER_IP takes one.
	mustApply(t, s, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "reuse", Namespace: "default",
		Type: svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, ExternalName: "db.example.com"}, UpdateMask: mask("type", "external_name", "cluster_ip")})
	if got := mustApply(t, s, simpleService("again")).Service.GetClusterIp(); got != "10.96.0.5" {
		t.Fatalf("IP of an EXTERNAL_NAME service not released: got %s", got)
	}
}

func TestNodePortAllocation(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/24", "30000-30002")
	np := func(name string, ports ...int32) *svcregv1.Service {
		svc := &svcregv1.Service{Name: name, Namespace: "default", Type: svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT}
		for i, p := range ports {
			svc.Ports = append(svc.Ports, &svcregv1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: int32(80 + i), NodePort: p})
		}
		return svc
	}
	a := mustApply(t, s, np("a", 30001)).Service
	if a.GetPorts()[0].GetNodePort() != 30001 {
		t.Fatalf("explicit node port: %v", a.GetPorts())
	}
	_, err := s.Apply(cmd(np("b", 30001)))
	assertFieldError(t, err, "service.ports[0].node_port")
	if !strings.Contains(err.Error(), "provided port is already allocated") {
		t.Errorf("err = %v", err)
	}
	_, err = s.Apply(cmd(np("c", 0, 31000)))
	assertFieldError(t, err, "service.ports[1].node_port")
	if !strings.Contains(err.Error(), "The range of valid ports is 30000-30002") {
		t.Errorf("err = %v", err)
	}
	b := mustApply(t, s, np("b", 0, 0)).Service
	if p0, p1 := b.GetPorts()[0].GetNodePort(), b.GetPorts()[1].GetNodePort(); p0 == p1 || p0 == 30001 || p1 == 30001 {
		t.Fatalf("auto node ports %d %d", p0, p1)
	}
	_, err = s.Apply(cmd(np("full", 0)))
	if !errors.Is(err, ErrRangeFull) {
		t.Fatalf("full node port range: %v", err)
	}
	// An update that leaves node ports out keeps them.
	upd := np("b", 0, 0)
	res := mustApply(t, s, &svcregv1.UpdateServiceRequest{Service: upd, UpdateMask: mask("ports")})
	if res.Service.GetPorts()[0].GetNodePort() != b.GetPorts()[0].GetNodePort() {
		t.Errorf("node port not kept on update: %v", res.Service.GetPorts())
	}
	// Back to CLUSTER_IP releases them (the ports must drop node_port too).
	mustApply(t, s, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "a", Namespace: "default",
		Type: svcregv1.ServiceType_SERVICE_TYPE_CLUSTER_IP, Ports: []*svcregv1.ServicePort{{Name: "p0", Port: 80}}}, UpdateMask: mask("type", "ports")})
	if got := mustApply(t, s, np("d", 30001)).Service.GetPorts()[0].GetNodePort(); got != 30001 {
		t.Fatalf("released node port not reusable: %d", got)
	}
}
