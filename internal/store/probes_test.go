// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

func probedInstance(name, ip string) *svcregv1.Instance {
	inst := webInstance(name, ip)
	inst.ReadinessProbe = &svcregv1.Probe{Handler: &svcregv1.Probe_HttpGet{HttpGet: &svcregv1.HTTPGetProbe{Port: "grpc"}}}
	return inst
}

// TestProbeStatus: an instance with a probe starts not ready (not
// serving) whatever it claims; a prober's report flips its endpoints; a
// report that changes nothing writes nothing; a changed probe starts over;
// a report about another uid or a probe-less instance is refused.
func TestProbeStatus(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/24", "30000-30010")
	mustApply(t, s, webService())
	res := mustApply(t, s, probedInstance("web-1", "10.0.0.1"))
	inst := res.Instance
	if p := inst.GetReadinessProbe(); p.GetPeriodSeconds() != 10 || p.GetTimeoutSeconds() != 1 || p.GetSuccessThreshold() != 1 ||
		p.GetFailureThreshold() != 3 || p.GetHttpGet().GetPath() != "/" || p.GetHttpGet().GetScheme() != "HTTP" {
		t.Fatalf("probe defaults: %v", p)
	}
	conditions := func() (ready, serving bool) {
		ep := endpointsOf(t, s, "shop", "web")["web-1"]
		return ep.GetReady(), ep.GetServing()
	}
	if r, sv := conditions(); r || sv {
		t.Fatalf("unprobed: ready=%v serving=%v, want neither", r, sv)
	}
	report := func(ready bool, uid string) (*Result, error) {
		return s.Apply(cmd(&svcregv1.ReportProbeResultRequest{Namespace: "shop", Name: "web-1", Uid: uid, Ready: ready, Prober: "server/n1", Message: "HTTP 200"}))
	}
	if _, err := report(true, inst.GetUid()); err != nil {
		t.Fatal(err)
	}
	if r, sv := conditions(); !r || !sv {
		t.Fatalf("probed ready: ready=%v serving=%v", r, sv)
	}
	rev := s.Revision()
	if _, err := report(true, inst.GetUid()); err != nil || s.Revision() != rev {
		t.Fatalf("a repeated verdict: %v, revision %d -> %d", err, rev, s.Revision())
	}
	if _, err := report(false, "other-uid"); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("a report about another uid: %v", err)
	}
	// The instance's own claim still counts: not ready by its own word.
	mustApply(t, s, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", Ready: proto.Bool(false)}, UpdateMask: mask("ready")})
	if r, _ := conditions(); r {
		t.Fatal("an instance that says it is not ready became ready through its probe")
	}
	mustApply(t, s, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", Ready: proto.Bool(true)}, UpdateMask: mask("ready")})
	// Another probe: not probed yet again.
	changed := &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{Port: "8443"}}}
	res = mustApply(t, s, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", ReadinessProbe: changed}, UpdateMask: mask("readiness_probe")})
	if res.Instance.GetProbeStatus().GetReady() {
		t.Fatal("a changed probe kept the old verdict")
	}
	// No probe: its status goes, and the claim alone decides.
	res = mustApply(t, s, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop"}, UpdateMask: mask("readiness_probe")})
	if res.Instance.GetProbeStatus() != nil {
		t.Fatal("a probe-less instance kept a probe status")
	}
	if r, _ := conditions(); !r {
		t.Fatal("without a probe the instance's claim is not followed")
	}
	if _, err := report(true, inst.GetUid()); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("a report about a probe-less instance: %v", err)
	}
	// Clients never write the status (an output-only field in a mask is
	// ignored, AIP-161).
	res = mustApply(t, s, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: "shop", ProbeStatus: &svcregv1.ProbeStatus{Ready: true}}, UpdateMask: mask("probe_status")})
	if res.Instance.GetProbeStatus() != nil {
		t.Fatal("a client wrote probe_status")
	}
}

// TestValidateProbe: each bad probe names its field.
func TestValidateProbe(t *testing.T) {
	tests := []struct {
		name  string
		probe *svcregv1.Probe
		field string
	}{
		{"no handler", &svcregv1.Probe{}, "instance.readiness_probe"},
		{"grpc port 0", &svcregv1.Probe{Handler: &svcregv1.Probe_Grpc{Grpc: &svcregv1.GRPCProbe{}}}, "instance.readiness_probe.grpc.port"},
		{"unknown port name", &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{Port: "admin"}}}, "instance.readiness_probe.tcp_socket.port"},
		{"port 70000", &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{Port: "70000"}}}, "instance.readiness_probe.tcp_socket.port"},
		{"a path without /", &svcregv1.Probe{Handler: &svcregv1.Probe_HttpGet{HttpGet: &svcregv1.HTTPGetProbe{Port: "grpc", Path: "healthz"}}}, "instance.readiness_probe.http_get.path"},
		{"scheme ftp", &svcregv1.Probe{Handler: &svcregv1.Probe_HttpGet{HttpGet: &svcregv1.HTTPGetProbe{Port: "grpc", Scheme: "FTP"}}}, "instance.readiness_probe.http_get.scheme"},
		{"a header name with a colon", &svcregv1.Probe{Handler: &svcregv1.Probe_HttpGet{HttpGet: &svcregv1.HTTPGetProbe{Port: "grpc",
			HttpHeaders: []*svcregv1.HTTPHeader{{Name: "X:y", Value: "1"}}}}}, "instance.readiness_probe.http_get.http_headers[0].name"},
		{"timeout above period", &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{Port: "grpc"}},
			PeriodSeconds: 2, TimeoutSeconds: 5}, "instance.readiness_probe.timeout_seconds"},
		{"failure threshold 101", &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{Port: "grpc"}},
			FailureThreshold: 101}, "instance.readiness_probe.failure_threshold"},
		{"negative initial delay", &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{Port: "grpc"}},
			InitialDelaySeconds: -1}, "instance.readiness_probe.initial_delay_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := webInstance("web-1", "10.0.0.1")
			inst.ReadinessProbe = tt.probe
			_, errs := prepareInstance(inst, DefaultLimits)
			if !strings.Contains(errs.Error(), tt.field+":") {
				t.Fatalf("errors %q do not name %s", errs.Error(), tt.field)
			}
		})
	}
}

// TestPrepareRestoreKeepsNodes: a restored backup keeps the restoring
// cluster's server records, not the saving one's.
func TestPrepareRestoreKeepsNodes(t *testing.T) {
	saved := newTestStore(t, "10.96.0.0/24", "30000-30010")
	setNode := func(s *Store, id, addr string) {
		if _, err := s.Apply(&storev1.Command{Time: timestamppb.New(testTime), Op: &storev1.Command_SetNode{SetNode: &storev1.SetNode{Id: id, GrpcAddress: addr, RaftAddress: addr}}}); err != nil {
			t.Fatal(err)
		}
	}
	setNode(saved, "old", "10.0.0.1:7400")
	mustApply(t, saved, webService())
	var backup bytes.Buffer
	if _, err := saved.Snapshot().WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	live := newTestStore(t, "10.96.0.0/24", "30000-30010")
	setNode(live, "n1", "10.0.0.2:7400")
	var prepared bytes.Buffer
	if _, err := live.PrepareRestore(&prepared, &backup, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Restore(&prepared); err != nil {
		t.Fatal(err)
	}
	nodes, _ := live.Read().Nodes()
	if len(nodes) != 1 || nodes[0].GetId() != "n1" {
		t.Fatalf("nodes after the restore: %v, want the live n1 only", nodes)
	}
	if _, err := live.Read().Service("shop", "web"); err != nil {
		t.Fatalf("the backup's service: %v", err)
	}
}
