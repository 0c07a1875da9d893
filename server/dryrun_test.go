// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// TestValidateOnly: a write with validate_only (AIP-163) is refused for
// exactly what the real write is refused for, answers what the real
// write would produce, and changes nothing. Before, `apply --dry-run` ran
// the checks in the CLI and approved a cluster IP outside the server's
// range and endpoints written by hand for a selector service.
func TestValidateOnly(t *testing.T) {
	ts := startServer(t, Config{ServiceCIDR: "10.96.0.0/16"})
	ctx := context.Background()
	ts.mustCreateService(t, &svcregv1.Service{Name: "taken", Namespace: "shop", Selector: map[string]string{"app": "taken"}, Ports: []*svcregv1.ServicePort{{Port: 80}}})
	ts.mustCreateInstance(t, &svcregv1.Instance{Name: "i-1", Namespace: "shop", Ip: "10.0.0.1", Labels: map[string]string{"app": "taken"}})
	svc := func(name, clusterIP string) *svcregv1.Service {
		return &svcregv1.Service{Name: name, Namespace: "shop", ClusterIp: clusterIP, Ports: []*svcregv1.ServicePort{{Port: 80}}}
	}
	type call func(validate bool) (any, error)
	tests := []struct {
		name string
		call call
		want codes.Code
	}{
		{"a new service", func(v bool) (any, error) {
			r, err := ts.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: svc("new", ""), ValidateOnly: v})
			return r.GetService().GetClusterIp(), err
		}, codes.OK},
		{"a cluster IP outside the service range", func(v bool) (any, error) {
			return ts.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: svc("outside", "192.168.1.1"), ValidateOnly: v})
		}, codes.InvalidArgument},
		{"a cluster IP in use", func(v bool) (any, error) {
			taken, _ := ts.client.GetService(ctx, &svcregv1.GetServiceRequest{Namespace: "shop", Name: "taken"})
			return ts.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: svc("clash", taken.GetService().GetClusterIp()), ValidateOnly: v})
		}, codes.InvalidArgument}, // "provided IP is already allocated", as Kubernetes says it
		{"a name in use", func(v bool) (any, error) {
			return ts.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: svc("taken", ""), ValidateOnly: v})
		}, codes.AlreadyExists},
		{"an invalid field", func(v bool) (any, error) {
			return ts.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: svc("Bad_Name", ""), ValidateOnly: v})
		}, codes.InvalidArgument},
		{"endpoints by hand for a selector service", func(v bool) (any, error) {
			return ts.client.ReplaceEndpoints(ctx, &svcregv1.ReplaceEndpointsRequest{Namespace: "shop", Service: "taken",
				Endpoints: []*svcregv1.Endpoint{{Ip: "10.0.0.9"}}, ValidateOnly: v})
		}, codes.FailedPrecondition},
		{"a stale etag", func(v bool) (any, error) {
			return ts.client.DeleteService(ctx, &svcregv1.DeleteServiceRequest{Namespace: "shop", Name: "taken", Etag: "stale", ValidateOnly: v})
		}, codes.Aborted},
		{"deleting what is not there", func(v bool) (any, error) {
			return ts.client.DeleteInstance(ctx, &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: "absent", ValidateOnly: v})
		}, codes.NotFound},
		{"a new instance", func(v bool) (any, error) {
			r, err := ts.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{Name: "i-2", Namespace: "shop",
				Ip: "10.0.0.2", Labels: map[string]string{"app": "taken"}}, ValidateOnly: v})
			return r.GetInstance().GetIp(), err
		}, codes.OK},
		{"deleting a service", func(v bool) (any, error) {
			_, err := ts.client.DeleteService(ctx, &svcregv1.DeleteServiceRequest{Namespace: "shop", Name: "taken", ValidateOnly: v})
			return nil, err
		}, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.store.Revision()
			dump := func() string {
				var b strings.Builder
				ts.store.Dump(&b)
				return b.String()
			}
			state := dump()
			dry, dryErr := tt.call(true)
			if status.Code(dryErr) != tt.want {
				t.Fatalf("validate_only: %v, want %v", dryErr, tt.want)
			}
			if ts.store.Revision() != before || dump() != state {
				t.Fatal("validate_only changed the registry")
			}
			real, realErr := tt.call(false)
			if status.Code(realErr) != tt.want {
				t.Fatalf("the real write: %v, want %v (validate_only said %v)", realErr, tt.want, dryErr)
			}
			if s, ok := dry.(string); ok && s != real.(string) {
				t.Errorf("validate_only answered %q, the write produced %q", s, real)
			}
		})
	}
}

// TestValidateOnlyThroughAFollower: a follower forwards a validate-only
// write to the leader, which checks it against its state and proposes
// nothing: no Raft entry, on any server.
func TestValidateOnlyThroughAFollower(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	follower := c.followers(leader)[0]
	leader.mustCreateService(t, &svcregv1.Service{Name: "taken", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Port: 80}}})
	c.converged(leader.store.Revision())
	c.addressesRecorded(t, leader)
	ctx := context.Background()
	// An election in the middle (a machine so busy that heartbeats are
	// late) appends the new leader's entries: that attempt says nothing
	// about validate-only writes, and is made again.
	for attempt := 1; ; attempt++ {
		term, index := raftTerm(leader), leader.node.Raft().LastIndex()
		ok, err := follower.client.CreateService(ctx, &svcregv1.CreateServiceRequest{ValidateOnly: true,
			Service: &svcregv1.Service{Name: "new", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Port: 80}}}})
		if err != nil || ok.GetService().GetClusterIp() == "" {
			t.Fatalf("a valid create: %v, %v", ok, err)
		}
		_, err = follower.client.CreateService(ctx, &svcregv1.CreateServiceRequest{ValidateOnly: true,
			Service: &svcregv1.Service{Name: "taken", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Port: 80}}}})
		if status.Code(err) != codes.AlreadyExists {
			t.Errorf("a conflicting create: %v, want ALREADY_EXISTS", err)
		}
		got := leader.node.Raft().LastIndex()
		if got != index && raftTerm(leader) != term && attempt < 3 {
			leader = c.waitLeader()
			follower = c.followers(leader)[0]
			continue
		}
		if got != index {
			t.Errorf("validate-only writes grew the log from %d to %d", index, got)
		}
		return
	}
}
