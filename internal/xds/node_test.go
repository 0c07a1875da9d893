// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// nodeClient is the Node gRPC client of testdata/node (@grpc/grpc-js with
// @grpc/grpc-js-xds, from the committed lock file) making RPCs without
// pause; lines carries what each answered.
type nodeClient struct {
	lines chan string
	errs  int // failed RPCs seen since the first success
	ok    bool
}

func startNodeClient(t *testing.T, r *registry, target string, args ...string) *nodeClient {
	t.Helper()
	return startNodeClientIn(t, r, target, "", args...)
}

// startNodeClientIn starts the Node client with its bootstrap's locality
// in zone.
func startNodeClientIn(t *testing.T, r *registry, target, zone string, args ...string) *nodeClient {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (CI installs it and the client's packages)")
	}
	dir, _ := filepath.Abs("testdata/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js-xds")); err != nil {
		t.Skip("the Node client's packages are not installed: npm ci --prefix internal/xds/testdata/node (CI does)")
	}
	bootstrap := filepath.Join(t.TempDir(), "bootstrap.json")
	js := fmt.Sprintf(`{"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}], "node": {"id": "node-e2e", "locality": {"zone": %q}}}`, r.srv.GRPCAddr(), zone)
	if err := os.WriteFile(bootstrap, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	proto, _ := filepath.Abs("../../proto/greeter/v1/greeter.proto")
	cmd := exec.Command(node, append([]string{"client.js", target, proto}, args...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "GRPC_XDS_BOOTSTRAP="+bootstrap)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &nodeClient{lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		stdin.Close() // the client stops at stdin's end
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("the Node client's stderr:\n%s", stderr.String())
		}
	})
	return c
}

// window reads the next n answers and counts them by instance.
func (c *nodeClient) window(t *testing.T, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, a := range c.answers(t, n) {
		got[a[0]]++
	}
	return got
}

// answers reads the next n answers: instance and key of each success.
func (c *nodeClient) answers(t *testing.T, n int) [][2]string {
	t.Helper()
	var got [][2]string
	timeout := time.After(30 * time.Second)
	for range n {
		select {
		case line, open := <-c.lines:
			if !open {
				t.Fatal("the Node client exited")
			}
			if rest, ok := strings.CutPrefix(line, "ok "); ok {
				c.ok = true
				inst, key, _ := strings.Cut(rest, " ")
				got = append(got, [2]string{inst, key})
			} else if !c.ok && c.errs == 0 {
				c.errs = -1 // log the first failure only
				t.Logf("the Node client, before its first success: %s", line)
			} else if c.ok {
				c.errs++
				t.Logf("the Node client: %s", line)
			}
		case <-timeout:
			t.Fatalf("the Node client answered %d RPCs in 30 s", n)
		}
	}
	return got
}

func (c *nodeClient) until(t *testing.T, what string, ok func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := c.window(t, 60)
		if ok(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the Node client's last 60 RPCs went %v", what, got)
		}
	}
}

// TestNodeXDSClient: Node's own xDS client (@grpc/grpc-js-xds) against the
// registry's ADS: it spreads over the backends, an added instance gets
// RPCs, a removed or drained one stops getting them, and no RPC fails.
func TestNodeXDSClient(t *testing.T) {
	r := startRegistry(t)
	r.createService(t, "greeter", "rr")
	for _, name := range []string{"greeter-1", "greeter-2", "greeter-3"} {
		r.register(t, "greeter", startBackend(t, name), 1)
	}
	c := startNodeClient(t, r, "xds:///greeter.shop:50051")
	c.until(t, "all three backends", func(got map[string]int) bool { return len(got) == 3 })

	r.register(t, "greeter", startBackend(t, "greeter-4"), 1)
	c.until(t, "the added instance", func(got map[string]int) bool { return got["greeter-4"] > 0 })

	ctx := context.Background()
	if _, err := r.reg.DeleteInstance(ctx, &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: "greeter-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.reg.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{
		Instance:   &svcregv1.Instance{Namespace: "shop", Name: "greeter-3", Terminating: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"terminating"}}}); err != nil {
		t.Fatal(err)
	}
	c.until(t, "the removed and the drained instance out", func(got map[string]int) bool {
		return got["greeter-2"] == 0 && got["greeter-3"] == 0 && got["greeter-1"] > 0 && got["greeter-4"] > 0
	})
	if c.errs != 0 {
		t.Errorf("%d of the Node client's RPCs failed while instances came and went", c.errs)
	}
}

// TestNodeXDSHashStickiness: for sh with a hash_key, Node's client takes
// ring_hash from the policy list (it has no ipvs policy) and hashes the
// header: each key stays on one backend, and the keys spread.
func TestNodeXDSHashStickiness(t *testing.T) {
	r := startRegistry(t)
	if _, err := r.reg.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: "sticky", Namespace: "shop", Selector: map[string]string{"app": "sticky"}, Scheduler: "sh",
		SchedulerOptions: &svcregv1.SchedulerOptions{HashKey: "x-user"},
		Ports:            []*svcregv1.ServicePort{{Name: "grpc", Port: 50051, TargetPort: "grpc"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sticky-1", "sticky-2", "sticky-3"} {
		r.register(t, "sticky", startBackend(t, name), 1)
	}
	c := startNodeClient(t, r, "xds:///sticky.shop:50051", "x-user")
	// ring_hash connects to backends as keys need them: wait until the
	// 60 keys reach all three (60 keys all missing one of three backends:
	// 3 * (2/3)^60, about 1e-10), then every key must keep its backend.
	c.until(t, "the keys on all three backends", func(got map[string]int) bool { return len(got) == 3 })
	owner := map[string]string{}
	for _, a := range c.answers(t, 300) {
		inst, key := a[0], a[1]
		if prev, ok := owner[key]; ok && prev != inst {
			t.Fatalf("key %s went to %s, then to %s", key, prev, inst)
		}
		owner[key] = inst
	}
	if c.errs != 0 {
		t.Errorf("%d of the Node client's RPCs failed", c.errs)
	}
}

// TestNodeXDSZones: Node's xDS client in zone a, a service that prefers
// the same zone: its RPCs stay in zone a, and fail over to zone b when
// zone a drains (gRFC A27 priorities).
func TestNodeXDSZones(t *testing.T) {
	r := startRegistry(t)
	ctx := context.Background()
	if _, err := r.reg.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: "zoned", Namespace: "shop", Selector: map[string]string{"app": "zoned"},
		TrafficDistribution: svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_ZONE,
		Ports:               []*svcregv1.ServicePort{{Name: "grpc", Port: 50051, TargetPort: "grpc"}}}}); err != nil {
		t.Fatal(err)
	}
	zoneOf := map[string]string{"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
	for _, name := range []string{"a1", "a2", "b1", "b2"} {
		b := startBackend(t, name)
		if _, err := r.reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
			Name: name, Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": "zoned"}, Zone: zoneOf[name],
			Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: int32(b.port)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	only := func(zone string) func(map[string]int) bool {
		return func(got map[string]int) bool {
			for inst := range got {
				if zoneOf[inst] != zone {
					return false
				}
			}
			return len(got) == 2
		}
	}
	c := startNodeClientIn(t, r, "xds:///zoned.shop:50051", "a")
	c.until(t, "the client stays in zone a", only("a"))
	for _, name := range []string{"a1", "a2"} {
		if _, err := r.reg.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{
			Name: name, Namespace: "shop", Terminating: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"terminating"}}}); err != nil {
			t.Fatal(err)
		}
	}
	c.until(t, "the client fails over to zone b when zone a drains", only("b"))
}
