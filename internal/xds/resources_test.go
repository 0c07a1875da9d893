// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds

import (
	"fmt"
	"slices"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/servicemodel"
)

func endpoint(instance string, port int32, weight uint32, ready, serving, terminating bool) *svcregv1.Endpoint {
	return &svcregv1.Endpoint{Instance: instance, Ip: "10.0.0.1", Weight: &weight, Ready: &ready, Serving: &serving, Terminating: terminating,
		Zone: "zone-a", Ports: []*svcregv1.EndpointPort{{Name: "grpc", Port: port}}}
}

// TestAssignmentHealth: which endpoints a ClusterLoadAssignment lists,
// and as what (KEP-1669's terminating fallback).
func TestAssignmentHealth(t *testing.T) {
	sp := &svcregv1.ServicePort{Name: "grpc", Port: 50051}
	ready := endpoint("ready", 1, 2, true, true, false)
	draining := endpoint("draining", 2, 1, false, true, true)
	notReady := endpoint("not-ready", 3, 1, false, false, false)
	quiesced := endpoint("quiesced", 4, 0, true, true, false)
	otherPort := &svcregv1.Endpoint{Instance: "other", Ip: "10.0.0.2", Ready: ptr(true), Weight: ptr(uint32(1)), Ports: []*svcregv1.EndpointPort{{Name: "http", Port: 80}}}
	tests := []struct {
		name string
		eps  []*svcregv1.Endpoint
		want []string // instance:health
	}{
		{"ready and draining", []*svcregv1.Endpoint{ready, draining}, []string{"ready:HEALTHY", "draining:DRAINING"}},
		{"only draining: what there is", []*svcregv1.Endpoint{draining}, []string{"draining:HEALTHY"}},
		{"not ready left out", []*svcregv1.Endpoint{ready, notReady}, []string{"ready:HEALTHY"}},
		{"quiesced left out, draining then used", []*svcregv1.Endpoint{quiesced, draining}, []string{"draining:HEALTHY"}},
		{"no port of that name", []*svcregv1.Endpoint{otherPort}, nil},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cla := assignment("svc.ns:50051", servicemodel.Backends(tt.eps, sp), nil)
			var got []string
			for _, l := range cla.GetEndpoints() {
				if l.GetLocality().GetZone() != "zone-a" && len(tt.want) > 0 {
					t.Errorf("locality %v: want the endpoint's zone", l.GetLocality())
				}
				for _, e := range l.GetLbEndpoints() {
					got = append(got, l.GetLocality().GetSubZone()+":"+e.GetHealthStatus().String())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	cla := assignment("svc.ns:50051", servicemodel.Backends([]*svcregv1.Endpoint{ready}, sp), nil)
	if w := cla.GetEndpoints()[0].GetLoadBalancingWeight().GetValue(); w != 2 {
		t.Errorf("locality weight %d, want the endpoint's 2", w)
	}
	if a := cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress(); a.GetAddress() != "10.0.0.1" || a.GetPortValue() != 1 {
		t.Errorf("address %v", a)
	}
}

func ptr[T any](v T) *T { return &v }

// TestPolicyFor: a scheduler's policy list (names in order) and hash
// policy.
func TestPolicyFor(t *testing.T) {
	tests := []struct {
		sched, hashKey string
		affinity       bool
		want           []string
		hash           string // "header:<name>", "channel" or ""
	}{
		{"", "", false, []string{"svcreg.ipvs", "wrr_locality"}, ""},
		{"rr", "", false, []string{"svcreg.ipvs", "wrr_locality"}, ""},
		{"wrr", "", false, []string{"svcreg.ipvs", "wrr_locality"}, ""},
		{"lc", "", false, []string{"svcreg.ipvs", "least_request", "wrr_locality"}, ""},
		{"twos", "", false, []string{"svcreg.ipvs", "least_request", "wrr_locality"}, ""},
		{"sh", "x-user", false, []string{"svcreg.ipvs", "ring_hash", "wrr_locality"}, "header:x-user"},
		{"mh", "", false, []string{"svcreg.ipvs", "ring_hash", "wrr_locality"}, "channel"},
		{"rr", "", true, []string{"svcreg.ipvs", "ring_hash", "wrr_locality"}, "channel"},
		{"fo", "", false, []string{"svcreg.ipvs", "wrr_locality"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.sched+"/"+tt.hashKey, func(t *testing.T) {
			svc := &svcregv1.Service{Scheduler: tt.sched}
			if tt.hashKey != "" {
				svc.SchedulerOptions = &svcregv1.SchedulerOptions{HashKey: tt.hashKey}
			}
			if tt.affinity {
				svc.SessionAffinity, svc.SessionAffinityTimeoutSeconds = svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP, ptr(int32(60))
			}
			p := policyFor(svc)
			var got []string
			for _, pol := range p.policies {
				got = append(got, pol.GetTypedExtensionConfig().GetName())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("policies %v, want %v", got, tt.want)
			}
			hash := ""
			for _, h := range p.hashPolicy {
				if hd := h.GetHeader(); hd != nil {
					hash = "header:" + hd.GetHeaderName()
				} else if h.GetFilterState().GetKey() == clientChannelID {
					hash = "channel"
				}
			}
			if hash != tt.hash {
				t.Errorf("hash policy %q, want %q", hash, tt.hash)
			}
		})
	}
}

// TestExternalNameCluster: an ExternalName service is a LOGICAL_DNS
// cluster on its name, with no assignment.
func TestExternalNameCluster(t *testing.T) {
	svc := &svcregv1.Service{Name: "db", Namespace: "shop", Type: svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME,
		ExternalName: "db.example.com.", Ports: []*svcregv1.ServicePort{{Name: "pg", Port: 5432}}}
	r := buildService(svc, nil)
	c := r.clusters["db.shop:5432"]
	if c.GetType().String() != "LOGICAL_DNS" || len(r.assignments) != 0 {
		t.Fatalf("cluster %v, assignments %d", c, len(r.assignments))
	}
	a := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if a.GetAddress() != "db.example.com" || a.GetPortValue() != 5432 {
		t.Errorf("address %v", a)
	}
	if _, ok := r.listeners["db.shop:5432"]; !ok {
		t.Error("no listener")
	}
}

// BenchmarkAssignmentBytes: what one endpoint change costs on the wire to
// each client of the service (state of the world resends the whole
// ClusterLoadAssignment), and to build and encode it once.
//
//	go test -run '^$' -bench BenchmarkAssignmentBytes ./internal/xds/
func BenchmarkAssignmentBytes(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			sp := &svcregv1.ServicePort{Name: "grpc", Port: 50051}
			eps := make([]*svcregv1.Endpoint, n)
			for i := range eps {
				eps[i] = endpoint(fmt.Sprintf("web-%d", i), int32(8000+i), 1, true, true, false)
				eps[i].Ip = fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
			}
			var size int
			for b.Loop() {
				cla := assignment("web.shop:50051", servicemodel.Backends(eps, sp), nil)
				resp := &discoveryv3.DiscoveryResponse{VersionInfo: "12345", TypeUrl: resourcev3.EndpointType, Nonce: "67",
					Resources: []*anypb.Any{mustAny(cla)}}
				out, err := proto.Marshal(resp)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			b.ReportMetric(float64(size), "bytes/change")
		})
	}
}
