// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

var testTime = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func newTestStore(t testing.TB, cidr, ports string) *Store {
	t.Helper()
	r, err := ParseIPRange(cidr)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := ParsePortRange(ports)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{ServiceIPs: r, NodePorts: pr})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var uidSeq int

func cmd(op any) *storev1.Command {
	c := &storev1.Command{Time: timestamppb.New(testTime)}
	switch op := op.(type) {
	case *svcregv1.Service:
		op = proto.Clone(op).(*svcregv1.Service)
		uidSeq++
		op.Uid = fmt.Sprintf("uid-%d", uidSeq)
		c.Op = &storev1.Command_CreateService{CreateService: &svcregv1.CreateServiceRequest{Service: op}}
	case *svcregv1.Instance:
		op = proto.Clone(op).(*svcregv1.Instance)
		uidSeq++
		op.Uid = fmt.Sprintf("uid-%d", uidSeq)
		c.Op = &storev1.Command_CreateInstance{CreateInstance: &svcregv1.CreateInstanceRequest{Instance: op}}
	case *svcregv1.UpdateServiceRequest:
		c.Op = &storev1.Command_UpdateService{UpdateService: op}
	case *svcregv1.UpdateInstanceRequest:
		c.Op = &storev1.Command_UpdateInstance{UpdateInstance: op}
	case *svcregv1.DeleteServiceRequest:
		c.Op = &storev1.Command_DeleteService{DeleteService: op}
	case *svcregv1.DeleteInstanceRequest:
		c.Op = &storev1.Command_DeleteInstance{DeleteInstance: op}
	case *svcregv1.ReplaceEndpointsRequest:
		c.Op = &storev1.Command_ReplaceEndpoints{ReplaceEndpoints: op}
	case *svcregv1.ReportProbeResultRequest:
		c.Op = &storev1.Command_ReportProbe{ReportProbe: op}
	default:
		panic(fmt.Sprintf("cmd: %T", op))
	}
	// As a proposer would (an invalid command stays as it is, for Apply to
	// reject).
	Prepare(c, DefaultLimits)
	return c
}

func mustApply(t testing.TB, s *Store, op any) *Result {
	t.Helper()
	res, err := s.Apply(cmd(op))
	if err != nil {
		t.Fatalf("Apply(%T): %v", op, err)
	}
	return res
}

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func webService() *svcregv1.Service {
	return &svcregv1.Service{
		Name: "web", Namespace: "shop",
		Selector: map[string]string{"app": "web"},
		Ports: []*svcregv1.ServicePort{
			{Name: "grpc", Port: 443, TargetPort: "grpc"},
			{Name: "metrics", Port: 9090},
		},
	}
}

func webInstance(name, ip string) *svcregv1.Instance {
	return &svcregv1.Instance{
		Name: name, Namespace: "shop", Ip: ip,
		Labels: map[string]string{"app": "web", "pod": name},
		Ports:  []*svcregv1.InstancePort{{Name: "grpc", Port: 8443}},
	}
}

func endpointsOf(t testing.TB, s *Store, ns, svc string) map[string]*svcregv1.Endpoint {
	t.Helper()
	eps, err := s.Read().Endpoints(ns, svc)
	if err != nil {
		t.Fatalf("Endpoints(%s/%s): %v", ns, svc, err)
	}
	m := map[string]*svcregv1.Endpoint{}
	for _, ep := range eps {
		m[ep.GetInstance()] = ep
	}
	return m
}
