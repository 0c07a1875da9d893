// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/validation"
)

// assertFieldError checks that err is a validation error naming field.
func assertFieldError(t testing.TB, err error, field string) {
	t.Helper()
	var list validation.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v (%T), want a validation error on %s", err, err, field)
	}
	for _, e := range list {
		if string(e.Field) == field {
			return
		}
	}
	t.Fatalf("err = %v, want an error on field %s", err, field)
}

func TestValidateService(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*svcregv1.Service)
		field string // empty: valid
	}{
		{"valid", func(*svcregv1.Service) {}, ""},
		{"missing name", func(s *svcregv1.Service) { s.Name = "" }, "service.name"},
		{"name with leading digit", func(s *svcregv1.Service) { s.Name = "1web" }, "service.name"},
		{"300 character name", func(s *svcregv1.Service) { s.Name = strings.Repeat("a", 300) }, "service.name"},
		{"upper-case namespace", func(s *svcregv1.Service) { s.Namespace = "Shop" }, "service.namespace"},
		{"all namespaces", func(s *svcregv1.Service) { s.Namespace = "-" }, "service.namespace"},
		{"bad label key", func(s *svcregv1.Service) { s.Labels = map[string]string{"-x": "y"} }, "service.labels"},
		{"bad label value", func(s *svcregv1.Service) { s.Labels = map[string]string{"x": "bad value"} }, `service.labels["x"]`},
		{"bad selector value", func(s *svcregv1.Service) { s.Selector = map[string]string{"app": "we b"} }, `service.selector["app"]`},
		{"huge annotations", func(s *svcregv1.Service) { s.Annotations = map[string]string{"a": strings.Repeat("x", 300<<10)} }, "service.annotations"},
		{"unknown type", func(s *svcregv1.Service) { s.Type = 42 }, "service.type"},
		{"bad cluster ip", func(s *svcregv1.Service) { s.ClusterIp = "10.96.0.300" }, "service.cluster_ip"},
		{"headless node port", func(s *svcregv1.Service) {
			s.ClusterIp, s.Type = meta.ClusterIPNone, svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT
		}, "service.cluster_ip"},
		{"external name with cluster ip", func(s *svcregv1.Service) {
			s.Type, s.ExternalName, s.ClusterIp = svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, "db.example.com", "10.96.0.5"
		}, "service.cluster_ip"},
		{"external name missing", func(s *svcregv1.Service) { s.Type = svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME }, "service.external_name"},
		{"external name invalid", func(s *svcregv1.Service) {
			s.Type, s.ExternalName = svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, "not_a_host"
		}, "service.external_name"},
		{"external name with trailing dot", func(s *svcregv1.Service) {
			s.Type, s.ExternalName, s.Ports = svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, "db.example.com.", nil
		}, ""},
		{"external name on cluster ip", func(s *svcregv1.Service) { s.ExternalName = "db.example.com" }, "service.external_name"},
		{"no ports", func(s *svcregv1.Service) { s.Ports = nil }, "service.ports"},
		{"headless without ports", func(s *svcregv1.Service) { s.Ports, s.ClusterIp = nil, meta.ClusterIPNone }, ""},
		{"port 0", func(s *svcregv1.Service) { s.Ports[0].Port = 0 }, "service.ports[0].port"},
		{"port 70000", func(s *svcregv1.Service) { s.Ports[1].Port = 70000 }, "service.ports[1].port"},
		{"unnamed port among two", func(s *svcregv1.Service) { s.Ports[1].Name = "" }, "service.ports[1].name"},
		{"single unnamed port", func(s *svcregv1.Service) { s.Ports = s.Ports[:1]; s.Ports[0].Name = "" }, ""},
		{"duplicate port names", func(s *svcregv1.Service) { s.Ports[1].Name = "grpc" }, "service.ports[1].name"},
		{"bad port name", func(s *svcregv1.Service) { s.Ports[1].Name = "Metrics" }, "service.ports[1].name"},
		{"duplicate port and protocol", func(s *svcregv1.Service) { s.Ports[1].Port = 443 }, "service.ports[1]"},
		{"same port other protocol", func(s *svcregv1.Service) {
			s.Ports[1].Port, s.Ports[1].Protocol = 443, svcregv1.Protocol_PROTOCOL_UDP
		}, ""},
		{"unknown protocol", func(s *svcregv1.Service) { s.Ports[0].Protocol = 9 }, "service.ports[0].protocol"},
		{"target port 0", func(s *svcregv1.Service) { s.Ports[0].TargetPort = "0" }, "service.ports[0].target_port"},
		{"target port name too long", func(s *svcregv1.Service) { s.Ports[0].TargetPort = "a-very-long-port-name" }, "service.ports[0].target_port"},
		{"target port name without letter", func(s *svcregv1.Service) { s.Ports[0].TargetPort = "-1" }, "service.ports[0].target_port"},
		{"node port on cluster ip", func(s *svcregv1.Service) { s.Ports[0].NodePort = 30001 }, "service.ports[0].node_port"},
		{"node port on node port service", func(s *svcregv1.Service) {
			s.Type, s.Ports[0].NodePort = svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT, 30001
		}, ""},
		{"affinity timeout too big", func(s *svcregv1.Service) {
			s.SessionAffinity, s.SessionAffinityTimeoutSeconds = svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP, proto.Int32(86401)
		}, "service.session_affinity_timeout_seconds"},
		{"affinity timeout without affinity", func(s *svcregv1.Service) { s.SessionAffinityTimeoutSeconds = proto.Int32(10) }, "service.session_affinity_timeout_seconds"},
		{"unknown affinity", func(s *svcregv1.Service) { s.SessionAffinity = 7 }, "service.session_affinity"},
		{"unknown scheduler", func(s *svcregv1.Service) { s.Scheduler = "random" }, "service.scheduler"},
		{"scheduler options", func(s *svcregv1.Service) {
			s.Scheduler = "sh"
			s.SchedulerOptions = &svcregv1.SchedulerOptions{HashKey: "X-User", Fallback: true, PersistenceTimeoutSeconds: 300}
		}, ""},
		{"bad hash key", func(s *svcregv1.Service) { s.SchedulerOptions = &svcregv1.SchedulerOptions{HashKey: "x user"} }, "service.scheduler_options.hash_key"},
		{"reserved hash key", func(s *svcregv1.Service) { s.SchedulerOptions = &svcregv1.SchedulerOptions{HashKey: "grpc-timeout"} }, "service.scheduler_options.hash_key"},
		{"secondary key alone", func(s *svcregv1.Service) { s.SchedulerOptions = &svcregv1.SchedulerOptions{SecondaryKey: "x"} }, "service.scheduler_options.secondary_key"},
		{"fallback on rr", func(s *svcregv1.Service) { s.SchedulerOptions = &svcregv1.SchedulerOptions{Fallback: true} }, "service.scheduler_options.fallback"},
		{"negative persistence", func(s *svcregv1.Service) {
			s.SchedulerOptions = &svcregv1.SchedulerOptions{PersistenceTimeoutSeconds: -1}
		}, "service.scheduler_options.persistence_timeout_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := webService()
			tt.mod(svc)
			defaultService(svc)
			errs := ValidateService(svc, "service", DefaultLimits)
			if tt.field == "" {
				if len(errs) != 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			assertFieldError(t, errs.Err(), tt.field)
		})
	}
}

func TestValidateInstance(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*svcregv1.Instance)
		field string
	}{
		{"valid", func(*svcregv1.Instance) {}, ""},
		{"dotted name", func(i *svcregv1.Instance) { i.Name = "web-1.zone-a" }, ""},
		{"missing name", func(i *svcregv1.Instance) { i.Name = "" }, "instance.name"},
		{"300 character name", func(i *svcregv1.Instance) { i.Name = strings.Repeat("a", 300) }, "instance.name"},
		{"missing ip", func(i *svcregv1.Instance) { i.Ip = "" }, "instance.ip"},
		{"bad ip", func(i *svcregv1.Instance) { i.Ip = "10.0.0.300" }, "instance.ip"},
		{"unspecified ip", func(i *svcregv1.Instance) { i.Ip = "::" }, "instance.ip"},
		{"multicast ip", func(i *svcregv1.Instance) { i.Ip = "224.0.0.1" }, "instance.ip"},
		{"loopback ip", func(i *svcregv1.Instance) { i.Ip = "127.0.0.1" }, ""},
		{"ipv6", func(i *svcregv1.Instance) { i.Ip = "2001:db8::1" }, ""},
		{"port 0", func(i *svcregv1.Instance) { i.Ports[0].Port = 0 }, "instance.ports[0].port"},
		{"port name too long", func(i *svcregv1.Instance) { i.Ports[0].Name = "abcdefghijklmnop" }, "instance.ports[0].name"},
		{"duplicate port names", func(i *svcregv1.Instance) {
			i.Ports = append(i.Ports, &svcregv1.InstancePort{Name: "grpc", Port: 1})
		}, "instance.ports[1].name"},
		{"duplicate port numbers", func(i *svcregv1.Instance) {
			i.Ports = append(i.Ports, &svcregv1.InstancePort{Name: "other", Port: 8443})
		}, "instance.ports[1]"},
		{"weight too big", func(i *svcregv1.Instance) { i.Weight = proto.Uint32(65536) }, "instance.weight"},
		{"weight zero", func(i *svcregv1.Instance) { i.Weight = proto.Uint32(0) }, ""},
		{"lower without upper", func(i *svcregv1.Instance) { i.LowerThreshold = proto.Uint32(1) }, "instance.lower_threshold"},
		{"lower above upper", func(i *svcregv1.Instance) {
			i.UpperThreshold, i.LowerThreshold = proto.Uint32(5), proto.Uint32(6)
		}, "instance.lower_threshold"},
		{"upper zero", func(i *svcregv1.Instance) { i.UpperThreshold = proto.Uint32(0) }, "instance.upper_threshold"},
		{"bad hostname", func(i *svcregv1.Instance) { i.Hostname = "Host_1" }, "instance.hostname"},
		{"bad subdomain", func(i *svcregv1.Instance) { i.Subdomain = "a.b" }, "instance.subdomain"},
		{"bad zone", func(i *svcregv1.Instance) { i.Zone = "zone a" }, "instance.zone"},
		{"ttl too long", func(i *svcregv1.Instance) { i.TtlSeconds = 3601 }, "instance.ttl_seconds"},
		{"negative ttl", func(i *svcregv1.Instance) { i.TtlSeconds = -1 }, "instance.ttl_seconds"},
		{"bad label", func(i *svcregv1.Instance) { i.Labels["k"] = strings.Repeat("v", 64) }, `instance.labels["k"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := webInstance("web-1", "10.0.0.1")
			tt.mod(inst)
			defaultInstance(inst)
			errs := ValidateInstance(inst, "instance", DefaultLimits)
			if tt.field == "" {
				if len(errs) != 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			assertFieldError(t, errs.Err(), tt.field)
		})
	}
}

// TestBadWritesLeaveStateUnchanged applies invalid commands and checks that
// neither the revision nor any object moved.
func TestBadWritesLeaveStateUnchanged(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/24", "30000-30009")
	mustApply(t, s, webService())
	mustApply(t, s, webInstance("web-1", "10.0.0.1"))
	tx := s.Read()
	svcBefore, _ := tx.Service("shop", "web")
	rev := tx.Revision()
	epsBefore := endpointsOf(t, s, "shop", "web")

	bad := []struct {
		name string
		op   any
	}{
		{"duplicate port names", &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
			Ports: []*svcregv1.ServicePort{{Name: "a", Port: 1}, {Name: "a", Port: 2}}}, UpdateMask: mask("ports")}},
		{"port 70000", &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
			Ports: []*svcregv1.ServicePort{{Port: 70000}}}, UpdateMask: mask("ports")}},
		{"cluster ip change", &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
			ClusterIp: "10.96.0.200"}, UpdateMask: mask("cluster_ip")}},
		{"bad mask path", &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop"}, UpdateMask: mask("nope")}},
		{"mask into a scalar", &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop"}, UpdateMask: mask("scheduler.x")}},
		{"stale etag", &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop", Etag: "999", Scheduler: "wrr"}, UpdateMask: mask("scheduler")}},
		{"stale resource version", &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop", ResourceVersion: 999, Scheduler: "wrr"}}},
		{"instance bad weight", &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", Weight: proto.Uint32(1 << 20)}, UpdateMask: mask("weight")}},
		{"instance duplicate name", webInstance("web-1", "10.0.0.9")},
		{"service duplicate name", webService()},
		{"delete with stale etag", &svcregv1.DeleteServiceRequest{Namespace: "shop", Name: "web", Etag: "999"}},
		{"delete missing", &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: "nope"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Apply(cmd(tt.op)); err == nil {
				t.Fatalf("Apply succeeded")
			}
			tx := s.Read()
			svc, _ := tx.Service("shop", "web")
			nowRev := tx.Revision()
			if nowRev != rev || !proto.Equal(svc, svcBefore) {
				t.Errorf("state changed: rev %d -> %d", rev, nowRev)
			}
			eps := endpointsOf(t, s, "shop", "web")
			if len(eps) != len(epsBefore) || !proto.Equal(eps["web-1"], epsBefore["web-1"]) {
				t.Errorf("endpoints changed")
			}
		})
	}
}

func TestUpdatePreconditionsAndMasks(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/24", "30000-30009")
	created := mustApply(t, s, webService()).Service

	_, err := s.Apply(cmd(&svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop", Etag: "nope"}}))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale etag: err = %v, want ErrConflict", err)
	}
	res := mustApply(t, s, &svcregv1.UpdateServiceRequest{
		Service: &svcregv1.Service{Name: "web", Namespace: "shop", Etag: created.GetEtag(),
			Scheduler: "sh", SchedulerOptions: &svcregv1.SchedulerOptions{HashKey: "x-user"}},
		UpdateMask: mask("scheduler", "scheduler_options.hash_key", "etag")})
	got := res.Service
	if got.GetScheduler() != "sh" || got.GetSchedulerOptions().GetHashKey() != "x-user" {
		t.Errorf("mask update not applied: %v", got)
	}
	if got.GetClusterIp() != created.GetClusterIp() || got.GetUid() != created.GetUid() || !proto.Equal(got.GetCreateTime(), created.GetCreateTime()) {
		t.Errorf("identity or allocation changed: %v vs %v", got, created)
	}
	if len(got.GetPorts()) != 2 || got.GetSelector()["app"] != "web" {
		t.Errorf("fields outside the mask changed: %v", got)
	}
	// A full replace (no mask) keeps the cluster IP when it is left out, as
	// Kubernetes does, and clears what it leaves out otherwise.
	res = mustApply(t, s, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
		Ports: []*svcregv1.ServicePort{{Port: 80}}}})
	if res.Service.GetClusterIp() != created.GetClusterIp() || len(res.Service.GetSelector()) != 0 || res.Service.GetScheduler() != "rr" {
		t.Errorf("full replace: %v", res.Service)
	}
	// A scheduler change drops the options the new scheduler does not take
	// (sh's fallback), unless the update asks for them.
	mustApply(t, s, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
		Scheduler: "sh", SchedulerOptions: &svcregv1.SchedulerOptions{HashKey: "x-user", Fallback: true}},
		UpdateMask: mask("scheduler", "scheduler_options")})
	res = mustApply(t, s, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop", Scheduler: "lc"},
		UpdateMask: mask("scheduler")})
	if o := res.Service.GetSchedulerOptions(); res.Service.GetScheduler() != "lc" || o.GetFallback() || o.GetHashKey() != "x-user" {
		t.Errorf("sh with a fallback to lc: %v", res.Service)
	}
	_, err = s.Apply(cmd(&svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop", Scheduler: "wlc",
		SchedulerOptions: &svcregv1.SchedulerOptions{Fallback: true}}, UpdateMask: mask("scheduler", "scheduler_options.fallback")}))
	if err == nil || !strings.Contains(err.Error(), "only the sh and mh schedulers have a fallback: leave it false") {
		t.Errorf("wlc asked for with a fallback: %v", err)
	}
}
