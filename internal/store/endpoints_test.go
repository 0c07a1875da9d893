// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

func TestDeriveEndpoint(t *testing.T) {
	base := func() *svcregv1.Instance {
		i := webInstance("web-1", "10.0.0.1")
		defaultInstance(i)
		return i
	}
	svc := func(mod func(*svcregv1.Service)) *svcregv1.Service {
		s := webService()
		if mod != nil {
			mod(s)
		}
		defaultService(s)
		return s
	}
	inst := func(mod func(*svcregv1.Instance)) *svcregv1.Instance {
		i := base()
		mod(i)
		return i
	}
	ports := []*svcregv1.EndpointPort{
		{Name: "grpc", Port: 8443, Protocol: svcregv1.Protocol_PROTOCOL_TCP},
		{Name: "metrics", Port: 9090, Protocol: svcregv1.Protocol_PROTOCOL_TCP},
	}
	want := func(mod func(*svcregv1.Endpoint)) *svcregv1.Endpoint {
		ep := &svcregv1.Endpoint{
			Service: "web", Namespace: "shop", Instance: "web-1", Ip: "10.0.0.1", Ports: ports,
			Ready: proto.Bool(true), Serving: proto.Bool(true), Weight: proto.Uint32(1),
		}
		if mod != nil {
			mod(ep)
		}
		return ep
	}
	tests := []struct {
		name string
		svc  *svcregv1.Service
		inst *svcregv1.Instance
		want *svcregv1.Endpoint
	}{
		{"selected ready instance", svc(nil), base(), want(nil)},
		{"selector value differs", svc(nil), inst(func(i *svcregv1.Instance) { i.Labels["app"] = "db" }), nil},
		{"selector key missing", svc(func(s *svcregv1.Service) { s.Selector["tier"] = "front" }), base(), nil},
		{"selectorless selects nothing", svc(func(s *svcregv1.Service) { s.Selector = nil }), base(), nil},
		{"external name has no endpoints", svc(func(s *svcregv1.Service) {
			s.Type, s.ExternalName, s.Ports = svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, "db.example.com", nil
		}), base(), nil},
		{"headless has endpoints", svc(func(s *svcregv1.Service) { s.ClusterIp = meta.ClusterIPNone }), base(), want(nil)},
		{"not ready", svc(nil), inst(func(i *svcregv1.Instance) { i.Ready = proto.Bool(false) }),
			want(func(e *svcregv1.Endpoint) { e.Ready, e.Serving = proto.Bool(false), proto.Bool(false) })},
		{"terminating and serving", svc(nil), inst(func(i *svcregv1.Instance) { i.Terminating = true }),
			want(func(e *svcregv1.Endpoint) { e.Ready, e.Terminating = proto.Bool(false), true })},
		{"terminating and not serving", svc(nil), inst(func(i *svcregv1.Instance) { i.Terminating, i.Ready = true, proto.Bool(false) }),
			want(func(e *svcregv1.Endpoint) {
				e.Ready, e.Serving, e.Terminating = proto.Bool(false), proto.Bool(false), true
			})},
		{"publish not ready addresses", svc(func(s *svcregv1.Service) { s.PublishNotReadyAddresses = true }),
			inst(func(i *svcregv1.Instance) { i.Ready = proto.Bool(false) }),
			want(func(e *svcregv1.Endpoint) { e.Serving = proto.Bool(false) })},
		{"named target port missing on instance", svc(nil), inst(func(i *svcregv1.Instance) { i.Ports = nil }),
			want(func(e *svcregv1.Endpoint) { e.Ports = ports[1:] })},
		{"named target port with other protocol", svc(nil), inst(func(i *svcregv1.Instance) {
			i.Ports[0].Protocol = svcregv1.Protocol_PROTOCOL_UDP
		}), want(func(e *svcregv1.Endpoint) { e.Ports = ports[1:] })},
		{"hostname published when subdomain is the service", svc(nil), inst(func(i *svcregv1.Instance) { i.Hostname, i.Subdomain = "w1", "web" }),
			want(func(e *svcregv1.Endpoint) { e.Hostname = "w1" })},
		{"hostname hidden under another subdomain", svc(nil), inst(func(i *svcregv1.Instance) { i.Hostname, i.Subdomain = "w1", "other" }), want(nil)},
		{"hostname without subdomain hidden", svc(nil), inst(func(i *svcregv1.Instance) { i.Hostname = "w1" }), want(nil)},
		{"weight thresholds and topology copied", svc(nil), inst(func(i *svcregv1.Instance) {
			i.Weight, i.UpperThreshold, i.LowerThreshold, i.Zone, i.Node = proto.Uint32(0), proto.Uint32(10), proto.Uint32(5), "z1", "n1"
		}), want(func(e *svcregv1.Endpoint) {
			e.Weight, e.UpperThreshold, e.LowerThreshold, e.Zone, e.Node = proto.Uint32(0), proto.Uint32(10), proto.Uint32(5), "z1", "n1"
		})},
		{"app protocol copied", svc(func(s *svcregv1.Service) { s.Ports[1].AppProtocol = "http" }), base(),
			want(func(e *svcregv1.Endpoint) {
				e.Ports = []*svcregv1.EndpointPort{ports[0], {Name: "metrics", Port: 9090, Protocol: svcregv1.Protocol_PROTOCOL_TCP, AppProtocol: "http"}}
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deriveEndpoint(tt.svc, tt.inst)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("deriveEndpoint (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEndpointsFollowChanges drives the derivation through Apply and checks
// that each change re-derives exactly the affected endpoints: the others
// keep their resource version.
func TestEndpointsFollowChanges(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/24", "30000-30009")
	mustApply(t, s, webService())
	other := webService()
	other.Name, other.Selector = "api", map[string]string{"app": "api"}
	mustApply(t, s, other)
	for _, n := range []string{"web-1", "web-2", "web-3"} {
		mustApply(t, s, webInstance(n, "10.0.0."+n[4:]))
	}
	eps := endpointsOf(t, s, "shop", "web")
	if len(eps) != 3 {
		t.Fatalf("got %d endpoints, want 3", len(eps))
	}
	if len(endpointsOf(t, s, "shop", "api")) != 0 {
		t.Fatalf("api selects nothing yet")
	}
	rv := func(name string) int64 { return endpointsOf(t, s, "shop", "web")[name].GetResourceVersion() }
	before2, before3 := rv("web-2"), rv("web-3")

	steps := []struct {
		name  string
		op    any
		check func(t *testing.T)
	}{
		{"ready=false on web-1 changes only web-1", &svcregv1.UpdateInstanceRequest{
			Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", Ready: proto.Bool(false)}, UpdateMask: mask("ready")},
			func(t *testing.T) {
				ep := endpointsOf(t, s, "shop", "web")["web-1"]
				if ep.GetReady() || ep.GetServing() {
					t.Errorf("web-1 endpoint %v, want not ready", ep)
				}
				if rv("web-2") != before2 || rv("web-3") != before3 {
					t.Errorf("unaffected endpoints were rewritten")
				}
			}},
		{"terminating web-2", &svcregv1.UpdateInstanceRequest{
			Instance: &svcregv1.Instance{Name: "web-2", Namespace: "shop", Terminating: true}, UpdateMask: mask("terminating")},
			func(t *testing.T) {
				ep := endpointsOf(t, s, "shop", "web")["web-2"]
				if ep.GetReady() || !ep.GetServing() || !ep.GetTerminating() {
					t.Errorf("web-2 endpoint %v, want ready=false serving=true terminating=true", ep)
				}
			}},
		{"relabel web-3 into api", &svcregv1.UpdateInstanceRequest{
			Instance: &svcregv1.Instance{Name: "web-3", Namespace: "shop", Labels: map[string]string{"app": "api"}}, UpdateMask: mask("labels")},
			func(t *testing.T) {
				if _, ok := endpointsOf(t, s, "shop", "web")["web-3"]; ok {
					t.Errorf("web-3 still in web")
				}
				if _, ok := endpointsOf(t, s, "shop", "api")["web-3"]; !ok {
					t.Errorf("web-3 not in api")
				}
			}},
		{"weight change", &svcregv1.UpdateInstanceRequest{
			Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", Weight: proto.Uint32(7)}, UpdateMask: mask("weight")},
			func(t *testing.T) {
				if w := endpointsOf(t, s, "shop", "web")["web-1"].GetWeight(); w != 7 {
					t.Errorf("weight %d, want 7", w)
				}
			}},
		{"instance ports change resolves the named target", &svcregv1.UpdateInstanceRequest{
			Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: 9443}}}, UpdateMask: mask("ports")},
			func(t *testing.T) {
				if p := endpointsOf(t, s, "shop", "web")["web-1"].GetPorts()[0].GetPort(); p != 9443 {
					t.Errorf("port %d, want 9443", p)
				}
			}},
		{"selector change re-derives", &svcregv1.UpdateServiceRequest{
			Service: &svcregv1.Service{Name: "web", Namespace: "shop", Selector: map[string]string{"pod": "web-2"}}, UpdateMask: mask("selector")},
			func(t *testing.T) {
				eps := endpointsOf(t, s, "shop", "web")
				if len(eps) != 1 || eps["web-2"] == nil {
					t.Errorf("endpoints %v, want only web-2", eps)
				}
			}},
		{"service ports change re-derives", &svcregv1.UpdateServiceRequest{
			Service: &svcregv1.Service{Name: "web", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Port: 80, TargetPort: "8080"}}}, UpdateMask: mask("ports")},
			func(t *testing.T) {
				ports := endpointsOf(t, s, "shop", "web")["web-2"].GetPorts()
				if len(ports) != 1 || ports[0].GetPort() != 8080 {
					t.Errorf("ports %v, want [8080]", ports)
				}
			}},
		{"delete instance removes its endpoints", &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: "web-2"},
			func(t *testing.T) {
				if len(endpointsOf(t, s, "shop", "web")) != 0 {
					t.Errorf("endpoints left after delete")
				}
			}},
		{"selector removed drops derived endpoints", &svcregv1.UpdateServiceRequest{
			Service: &svcregv1.Service{Name: "api", Namespace: "shop"}, UpdateMask: mask("selector")},
			func(t *testing.T) {
				if len(endpointsOf(t, s, "shop", "api")) != 0 {
					t.Errorf("derived endpoints left on a selectorless service")
				}
			}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			mustApply(t, s, st.op)
			st.check(t)
		})
	}
}

func TestNoOpWritesKeepTheRevision(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/24", "30000-30009")
	mustApply(t, s, webService())
	mustApply(t, s, webInstance("web-1", "10.0.0.1"))
	rev := s.Revision()
	res := mustApply(t, s, &svcregv1.UpdateInstanceRequest{
		Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", Ip: "10.0.0.1"}, UpdateMask: mask("ip")})
	if res.Revision != rev || s.Revision() != rev {
		t.Errorf("no-op update moved the revision %d -> %d", rev, res.Revision)
	}
	res = mustApply(t, s, &svcregv1.UpdateServiceRequest{
		Service: &svcregv1.Service{Name: "web", Namespace: "shop", Scheduler: "rr"}, UpdateMask: mask("scheduler")})
	if res.Revision != rev {
		t.Errorf("no-op service update moved the revision")
	}
}

func TestManualEndpoints(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/24", "30000-30009")
	ext := &svcregv1.Service{Name: "db", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Name: "sql", Port: 5432}}}
	mustApply(t, s, ext)
	res := mustApply(t, s, &svcregv1.ReplaceEndpointsRequest{Namespace: "shop", Service: "db", Endpoints: []*svcregv1.Endpoint{
		{Instance: "db-a", Ip: "192.0.2.10"},
		{Instance: "db-b", Ip: "192.0.2.11", Ready: proto.Bool(false), Ports: []*svcregv1.EndpointPort{{Name: "sql", Port: 6432}}},
	}})
	if len(res.Endpoints) != 2 {
		t.Fatalf("got %d endpoints", len(res.Endpoints))
	}
	a, b := res.Endpoints[0], res.Endpoints[1]
	if a.GetPorts()[0].GetPort() != 5432 || !a.GetReady() || !a.GetServing() || a.GetWeight() != 1 {
		t.Errorf("db-a defaults wrong: %v", a)
	}
	if b.GetPorts()[0].GetPort() != 6432 || b.GetReady() || b.GetServing() || b.GetPorts()[0].GetProtocol() != svcregv1.Protocol_PROTOCOL_TCP {
		t.Errorf("db-b wrong: %v", b)
	}
	// Replacing with one unchanged and one dropped endpoint leaves db-a's
	// revision alone.
	rvA := a.GetResourceVersion()
	res = mustApply(t, s, &svcregv1.ReplaceEndpointsRequest{Namespace: "shop", Service: "db", Endpoints: []*svcregv1.Endpoint{{Instance: "db-a", Ip: "192.0.2.10"}}})
	if len(res.Endpoints) != 1 || res.Endpoints[0].GetResourceVersion() != rvA {
		t.Errorf("after replace: %v (db-a rv want %d)", res.Endpoints, rvA)
	}
	// Service updates keep hand-written endpoints.
	mustApply(t, s, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "db", Namespace: "shop", Labels: map[string]string{"x": "y"}}, UpdateMask: mask("labels")})
	if len(endpointsOf(t, s, "shop", "db")) != 1 {
		t.Errorf("hand-written endpoints lost on a service update")
	}
	// Adding a selector replaces them by derived ones.
	mustApply(t, s, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "db", Namespace: "shop", Selector: map[string]string{"app": "db"}}, UpdateMask: mask("selector")})
	if len(endpointsOf(t, s, "shop", "db")) != 0 {
		t.Errorf("hand-written endpoints survived a selector")
	}

	errTests := []struct {
		name    string
		req     *svcregv1.ReplaceEndpointsRequest
		wantErr error
		field   string
	}{
		{"selector service", &svcregv1.ReplaceEndpointsRequest{Namespace: "shop", Service: "db"}, ErrFailedPrecondition, ""},
		{"missing service", &svcregv1.ReplaceEndpointsRequest{Namespace: "shop", Service: "nope"}, ErrNotFound, ""},
	}
	mustApply(t, s, &svcregv1.Service{Name: "manual", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Name: "a", Port: 1}, {Name: "b", Port: 2}}})
	for _, tt := range []struct {
		ep    *svcregv1.Endpoint
		field string
	}{
		{&svcregv1.Endpoint{Ip: "192.0.2.1"}, "endpoints[0].instance"},
		{&svcregv1.Endpoint{Instance: "x"}, "endpoints[0].ip"},
		{&svcregv1.Endpoint{Instance: "x", Ip: "0.0.0.0"}, "endpoints[0].ip"},
		{&svcregv1.Endpoint{Instance: "x", Ip: "192.0.2.1", Ports: []*svcregv1.EndpointPort{{Name: "c", Port: 1}}}, "endpoints[0].ports[0].name"},
		{&svcregv1.Endpoint{Instance: "x", Ip: "192.0.2.1", Ports: []*svcregv1.EndpointPort{{Name: "a", Port: 0}}}, "endpoints[0].ports[0].port"},
		{&svcregv1.Endpoint{Instance: "x", Ip: "192.0.2.1", Weight: proto.Uint32(70000)}, "endpoints[0].weight"},
		{&svcregv1.Endpoint{Instance: "x", Ip: "192.0.2.1", Service: "other"}, "endpoints[0].service"},
	} {
		errTests = append(errTests, struct {
			name    string
			req     *svcregv1.ReplaceEndpointsRequest
			wantErr error
			field   string
		}{tt.field, &svcregv1.ReplaceEndpointsRequest{Namespace: "shop", Service: "manual", Endpoints: []*svcregv1.Endpoint{tt.ep}}, nil, tt.field})
	}
	errTests = append(errTests, struct {
		name    string
		req     *svcregv1.ReplaceEndpointsRequest
		wantErr error
		field   string
	}{"duplicate", &svcregv1.ReplaceEndpointsRequest{Namespace: "shop", Service: "manual", Endpoints: []*svcregv1.Endpoint{
		{Instance: "x", Ip: "192.0.2.1"}, {Instance: "x", Ip: "192.0.2.2"}}}, nil, "endpoints[1].instance"})
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			rev := s.Revision()
			_, err := s.Apply(cmd(tt.req))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else {
				assertFieldError(t, err, tt.field)
			}
			if s.Revision() != rev {
				t.Errorf("a failed write moved the revision")
			}
		})
	}
}
