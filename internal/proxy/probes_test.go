// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/svcreg/svcreg/client"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/server"
)

// TestAgentProbesItsNode: an agent with a node name probes the instances
// of its node and holds the node's lease, so the servers probe only the
// others; when the agent stops, its lease lapses and a server takes its
// instances over. No data plane is involved (no service is proxied), so
// this runs without root.
func TestAgentProbesItsNode(t *testing.T) {
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx); close(served) }()
	t.Cleanup(func() { cancel(); <-served })
	if err := srv.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := client.New(ctx, srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(backend.Addr().String())
	for _, node := range []string{"node-a", "node-b"} {
		if _, err := reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
			Name: "on-" + node, Namespace: "shop", Ip: "127.0.0.1", Node: node,
			ReadinessProbe: &svcregv1.Probe{Handler: &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{Port: port}},
				PeriodSeconds: 1, FailureThreshold: 1}}}); err != nil {
			t.Fatal(err)
		}
	}

	agentCtx, stopAgent := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() {
		stopped <- Run(agentCtx, Config{Registry: reg.RegistryServiceClient, Mode: ModeUserspace, VIPInterface: "-",
			NodeName: "node-a", NodeLeaseTTL: 2 * time.Second, Logger: quietLogger()})
	}()
	proberOf := func(name string) string {
		resp, err := reg.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetInstance().GetProbeStatus().GetReady() {
			return ""
		}
		return resp.GetInstance().GetProbeStatus().GetProber()
	}
	poll(t, "the agent to probe its node's instance", 30*time.Second, func() bool { return proberOf("on-node-a") == "agent/node-a" })
	poll(t, "a server to probe the other node's", 30*time.Second, func() bool { return strings.HasPrefix(proberOf("on-node-b"), "server/") })
	if _, err := reg.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: meta.NodeLeaseNamespace, Name: "node-a"}); err != nil {
		t.Fatalf("the node's lease: %v", err)
	}

	stopAgent()
	if err := <-stopped; err != nil {
		t.Fatalf("the agent: %v", err)
	}
	poll(t, "a server to take the stopped agent's instance over", 30*time.Second, func() bool {
		return strings.HasPrefix(proberOf("on-node-a"), "server/")
	})
}
