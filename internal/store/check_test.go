// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"strings"
	"testing"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	"github.com/svcreg/svcreg/internal/validation"
)

// TestPrepareRefusesACommandWithoutOp: a command that names no operation
// (the peer port's ApplyCommand with junk) is a field error naming "op",
// which the servers answer INVALID_ARGUMENT, never an internal error.
func TestPrepareRefusesACommandWithoutOp(t *testing.T) {
	err := Prepare(&storev1.Command{RequestId: "r1", Owner: "someone", RequireOwner: true}, DefaultLimits)
	var list validation.ErrorList
	if !errors.As(err, &list) || !strings.Contains(err.Error(), "op") {
		t.Fatalf("Prepare of a command without an op: %v (%T), want a field error naming op", err, err)
	}
}

// TestPrepareServersCommands: the servers' own commands are checked as a
// client's are (an empty SetNode record was stored before).
func TestPrepareServersCommands(t *testing.T) {
	node := func(f func(*storev1.SetNode)) *storev1.Command {
		n := &storev1.SetNode{Id: "n1", PeerAddress: "127.0.0.1:8101", RaftAddress: "127.0.0.1:8101", GrpcAddress: "127.0.0.1:7401"}
		f(n)
		return &storev1.Command{Op: &storev1.Command_SetNode{SetNode: n}}
	}
	expire := func(refs ...*storev1.InstanceRef) *storev1.Command {
		return &storev1.Command{Op: &storev1.Command_ExpireInstances{ExpireInstances: &storev1.ExpireInstances{Instances: refs}}}
	}
	tests := []struct {
		name string
		cmd  *storev1.Command
		want string // "" accepted; else a field the error names
	}{
		{"a server's record", node(func(*storev1.SetNode) {}), ""},
		{"without a gRPC address", node(func(n *storev1.SetNode) { n.GrpcAddress = "" }), ""},
		{"empty", &storev1.Command{Op: &storev1.Command_SetNode{SetNode: &storev1.SetNode{}}}, "set_node.id"},
		{"a server alone (no peer port, an in-memory Raft address)", node(func(n *storev1.SetNode) { n.PeerAddress, n.RaftAddress = "", "n1" }), ""},
		{"no Raft address", node(func(n *storev1.SetNode) { n.RaftAddress = "" }), "set_node.raft_address"},
		{"a peer address without a port", node(func(n *storev1.SetNode) { n.PeerAddress = "127.0.0.1" }), "set_node.peer_address"},
		{"port 0", node(func(n *storev1.SetNode) { n.GrpcAddress = "127.0.0.1:0" }), "set_node.grpc_address"},
		{"an ID with a newline", node(func(n *storev1.SetNode) { n.Id = "n1\naudit=forged" }), "set_node.id"},
		{"an ID too long", node(func(n *storev1.SetNode) { n.Id = strings.Repeat("n", 256) }), "set_node.id"},
		{"an expiry", expire(&storev1.InstanceRef{Namespace: "shop", Name: "web-1", ResourceVersion: 7}), ""},
		{"an expiry of a nameless instance", expire(&storev1.InstanceRef{Namespace: "shop"}), "expire_instances.instances[0].name"},
		{"an expiry of a bad namespace", expire(&storev1.InstanceRef{Namespace: "Shop!", Name: "a"}), "expire_instances.instances[0].namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Prepare(tt.cmd, DefaultLimits)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Prepare = %v, want a field error naming %s", err, tt.want)
			}
		})
	}
}
