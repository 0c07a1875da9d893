// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svcreg/svcreg/client"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/server"
)

// insideNetns runs the calling test again in a network namespace of its
// own (unshare --net: the test binary re-executed, that test alone), where
// it may add cluster IPs and program nf_tables without touching the
// machine's. It returns true in the namespace, where the test goes on,
// and false outside, where the re-run's verdict is this test's.
func insideNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("SVCREG_TEST_NETNS") == t.Name() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set lo up: %v\n%s", err, out)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs in a network namespace of its own, adds cluster IPs and programs nf_tables (CI runs as root)")
	}
	args := []string{"--net", "--", os.Args[0], "-test.run", "^" + t.Name() + "$", "-test.v", "-test.count=1"}
	if deadline, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(deadline).Round(time.Second).String())
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "SVCREG_TEST_NETNS="+t.Name())
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.Contains(line, "_test.go:") || strings.HasPrefix(strings.TrimSpace(line), "---") || strings.HasPrefix(line, "panic") {
			t.Log(line)
		}
	}
	if err != nil {
		t.Fatalf("in its network namespace: %v\n%s", err, lastOf(string(out), 40))
	}
	return false
}

func lastOf(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// env is a registry, a client of it and a running agent, in the test's
// network namespace.
type env struct {
	t     testing.TB
	reg   *client.Client
	plans chan plannedState // every data plane update
	last  map[frontKey]*frontend
}

type plannedState struct {
	fronts map[frontKey]*frontend
	err    error
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	quiet := quietLogger()
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx); close(served) }()
	t.Cleanup(func() { cancel(); <-served })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := srv.Ready(wctx); err != nil {
		t.Fatal(err)
	}
	reg, err := client.New(ctx, srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	e := &env{t: t, reg: reg, plans: make(chan plannedState, 1024)}
	cfg.Registry, cfg.Logger = reg.RegistryServiceClient, quiet
	if cfg.Mode == "" {
		cfg.Mode = ModeUserspace
	}
	cfg.observe = func(f map[frontKey]*frontend, err error) { e.plans <- plannedState{f, err} }
	actx, acancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- Run(actx, cfg) }()
	t.Cleanup(func() {
		acancel()
		if err := <-stopped; err != nil {
			t.Errorf("the agent: %v", err)
		}
	})
	return e
}

// do runs a registry call and waits until the data plane is programmed
// as until says.
func (e *env) do(what string, call func(ctx context.Context) error, until func(map[frontKey]*frontend) bool) {
	e.t.Helper()
	if err := call(context.Background()); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	e.waitPlan(what, until)
}

func (e *env) waitPlan(what string, until func(map[frontKey]*frontend) bool) {
	e.t.Helper()
	deadline := time.After(20 * time.Second)
	for e.last == nil || !until(e.last) {
		select {
		case p := <-e.plans:
			if p.err != nil {
				e.t.Fatalf("%s: the data plane update failed: %v", what, p.err)
			}
			e.last = p.fronts
		case <-deadline:
			e.t.Fatalf("%s: the data plane never got there", what)
		}
	}
}

// served is a plan condition: addr is served, with backend among its
// backends (or without it, when absent).
func served(addr, backend string, present bool) func(map[frontKey]*frontend) bool {
	return func(fronts map[frontKey]*frontend) bool {
		for k, f := range fronts {
			if k.addr != addr {
				continue
			}
			has := false
			for _, b := range f.backends {
				has = has || b.Addr == backend
			}
			return backend == "" || has == present
		}
		return false
	}
}

func (e *env) createService(svc *svcregv1.Service) *svcregv1.Service {
	e.t.Helper()
	resp, err := e.reg.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: svc})
	if err != nil {
		e.t.Fatalf("creating service %s: %v", svc.GetName(), err)
	}
	created := resp.GetService()
	for _, p := range created.GetPorts() {
		e.waitPlan("serving "+svc.GetName(), served(net.JoinHostPort(created.GetClusterIp(), strconv.Itoa(int(p.GetPort()))), "", true))
	}
	return created
}

// register registers a backend of the service app (its cluster IP's
// port 80) and waits until the data plane has it.
func (e *env) register(b *echoBackend, app, clusterIP string) {
	e.t.Helper()
	e.do("registering "+b.name, func(ctx context.Context) error {
		_, err := e.reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
			Name: b.name, Namespace: "shop", Ip: b.ip, Labels: map[string]string{"app": app},
			Ports: []*svcregv1.InstancePort{{Name: "echo", Port: int32(b.port), Protocol: b.protocol()}}}})
		return err
	}, served(clusterIP+":80", b.addr(), true))
}

func (e *env) deregister(b *echoBackend, clusterIP string) {
	e.t.Helper()
	e.do("deregistering "+b.name, func(ctx context.Context) error {
		_, err := e.reg.DeleteInstance(ctx, &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: b.name})
		return err
	}, served(clusterIP+":80", b.addr(), false))
}

func (b *echoBackend) addr() string { return net.JoinHostPort(b.ip, strconv.Itoa(b.port)) }

// echoBackend echoes TCP (until the client's EOF, then closes its side)
// or UDP, and counts the connections it accepted.
type echoBackend struct {
	name, ip string
	port     int
	udp      bool
	accepted atomic.Int64
	lis      net.Listener
	pc       net.PacketConn
}

func (b *echoBackend) protocol() svcregv1.Protocol {
	if b.udp {
		return svcregv1.Protocol_PROTOCOL_UDP
	}
	return svcregv1.Protocol_PROTOCOL_TCP
}

func startEcho(t testing.TB, name, ip string, udp bool) *echoBackend {
	t.Helper()
	b := &echoBackend{name: name, ip: ip, udp: udp}
	if udp {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		b.pc, b.port = pc, pc.LocalAddr().(*net.UDPAddr).Port
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, maxDatagram)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				b.accepted.Add(1)
				pc.WriteTo(append([]byte(name+":"), buf[:n]...), from)
			}
		}()
		return b
	}
	lis, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	b.lis, b.port = lis, lis.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return b
}

// exchange sends data over a new connection to addr, half-closes, and
// returns what came back before the server's EOF.
func exchange(t *testing.T, addr string, data []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading from %s: %v", addr, err)
	}
	return got
}

func mustEcho(t *testing.T, addr string, data []byte) {
	t.Helper()
	if got := exchange(t, addr, data); !bytes.Equal(got, data) {
		t.Fatalf("through %s: %d bytes back, want the %d sent", addr, len(got), len(data))
	}
}

func counts(bs []*echoBackend) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, fmt.Sprintf("%s=%d", b.name, b.accepted.Load()))
	}
	return strings.Join(parts, " ")
}
