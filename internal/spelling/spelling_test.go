// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package spelling

import (
	"testing"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

func TestSpellings(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{Of(svcregv1.ServiceType_SERVICE_TYPE_CLUSTER_IP), "ClusterIP"},
		{Of(svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT), "NodePort"},
		{Of(svcregv1.ServiceType_SERVICE_TYPE_LOAD_BALANCER), "LoadBalancer"},
		{Of(svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME), "ExternalName"},
		{Of(svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP), "ClientIP"},
		{Of(svcregv1.SessionAffinity_SESSION_AFFINITY_NONE), "None"},
		{Of(svcregv1.Protocol_PROTOCOL_SCTP), "SCTP"},
		{Of(svcregv1.EventType_EVENT_TYPE_BOOKMARK), "BOOKMARK"},
		{Of(svcregv1.EventType_EVENT_TYPE_SYNCED), "EVENT_TYPE_SYNCED"}, // none in Kubernetes
		{Protocol(svcregv1.Protocol_PROTOCOL_UNSPECIFIED), "tcp"},
		{Protocol(svcregv1.Protocol_PROTOCOL_UDP), "udp"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
	enum := svcregv1.ServiceType(0).Descriptor()
	for s, want := range map[string]svcregv1.ServiceType{"NodePort": svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT,
		"SERVICE_TYPE_NODE_PORT": svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT} {
		if n, ok := Parse(enum, s); !ok || svcregv1.ServiceType(n) != want {
			t.Errorf("Parse(%q) = %v, %v", s, n, ok)
		}
	}
	if _, ok := Parse(enum, "nodeport"); ok {
		t.Error("Parse is case-insensitive; Kubernetes is not")
	}
	if k8s, own := Accepted(enum); len(k8s) != 4 || len(own) != 4 || k8s[0] != "ClusterIP" {
		t.Errorf("Accepted: %v %v", k8s, own)
	}
}
