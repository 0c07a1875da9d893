// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// probedInstance is an instance whose readiness probe is an HTTP GET of
// addr, checked every second and flipped by one result.
func probedInstance(name, addr string) *svcregv1.Instance {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return &svcregv1.Instance{Name: name, Namespace: "shop", Ip: host, Labels: map[string]string{"app": "web"},
		Ports: []*svcregv1.InstancePort{{Name: "http", Port: int32(n)}},
		ReadinessProbe: &svcregv1.Probe{Handler: &svcregv1.Probe_HttpGet{HttpGet: &svcregv1.HTTPGetProbe{Path: "/ready", Port: "http"}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}}
}

// TestServerProbes: a server probes an instance nobody else probes; the
// endpoint follows the probe (not ready, not serving while it fails)
// with nobody touching the registry, and a steady result writes nothing.
func TestServerProbes(t *testing.T) {
	t.Parallel()
	var code atomic.Int32
	code.Store(200)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(code.Load())) }))
	defer backend.Close()
	ts := startServer(t, Config{})
	ctx := context.Background()
	ts.mustCreateService(t, webSvc())
	if _, err := ts.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: probedInstance("web-1", backend.Listener.Addr().String())}); err != nil {
		t.Fatal(err)
	}
	endpoint := func() *svcregv1.Endpoint {
		resp, err := ts.client.ListEndpoints(ctx, &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "web"})
		if err != nil || len(resp.GetEndpoints()) != 1 {
			t.Fatalf("endpoints: %v, %v", resp, err)
		}
		return resp.GetEndpoints()[0]
	}
	waitFor(t, "the probe to make the endpoint ready", 30*time.Second, func() bool { return endpoint().GetReady() })
	inst, err := ts.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	if st := inst.GetInstance().GetProbeStatus(); st.GetProber() != "server/"+ts.node.ID() || st.GetMessage() != "HTTP 200" {
		t.Fatalf("probe status %v", st)
	}

	// Steady: three more checks, no write.
	rev := ts.store.Revision()
	checks, _ := ts.probes.m.Checks()
	waitFor(t, "three more checks", 30*time.Second, func() bool { c, _ := ts.probes.m.Checks(); return c >= checks+3 })
	if ts.store.Revision() != rev {
		t.Fatalf("steady checks wrote: revision %d -> %d", rev, ts.store.Revision())
	}

	code.Store(500)
	waitFor(t, "the failing probe to take the endpoint out", 30*time.Second, func() bool {
		ep := endpoint()
		return !ep.GetReady() && !ep.GetServing()
	})
	inst, _ = ts.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: "web-1"})
	if st := inst.GetInstance().GetProbeStatus(); st.GetReady() || st.GetMessage() != "HTTP 500" {
		t.Fatalf("probe status %v", st)
	}
}

// TestProbersShareInstances: in a cluster every probed instance has
// exactly one server probing it, and when a server stops the others take
// its share.
func TestProbersShareInstances(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer backend.Close()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	ctx := context.Background()
	const n = 30
	for i := range n {
		inst := probedInstance(fmt.Sprintf("web-%d", i), backend.Listener.Addr().String())
		inst.ReadinessProbe.PeriodSeconds = 10
		if _, err := leader.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst}); err != nil {
			t.Fatal(err)
		}
	}
	probing := func(members []*member) (total, most int) {
		for _, m := range members {
			p := m.probes.m.Probing()
			total, most = total+p, max(most, p)
		}
		return total, most
	}
	waitFor(t, "every instance to have one prober", 30*time.Second, func() bool {
		total, _ := probing(c.live())
		return total == n
	})
	if _, most := probing(c.live()); most == n {
		t.Errorf("one server probes all %d instances: the share is not spread", n)
	}
	var gone *member
	for _, m := range c.followers(leader) {
		if m.probes.m.Probing() > 0 {
			gone = m
			break
		}
	}
	if gone == nil {
		t.Fatal("no follower probes anything")
	}
	c.kill(gone)
	waitFor(t, "the others to take the stopped server's share", 60*time.Second, func() bool {
		total, _ := probing(c.live())
		return total == n
	})
	// And the verdicts they record name them.
	waitFor(t, "every instance probed ready", 30*time.Second, func() bool {
		resp, err := leader.client.ListInstances(ctx, &svcregv1.ListInstancesRequest{Namespace: "shop"})
		if err != nil {
			return false
		}
		for _, inst := range resp.GetInstances() {
			if !inst.GetProbeStatus().GetReady() {
				return false
			}
		}
		return len(resp.GetInstances()) == n
	})
}
