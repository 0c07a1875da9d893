// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/certs"
	"github.com/svcreg/svcreg/internal/clientauth"
	"github.com/svcreg/svcreg/internal/reservedports"
	"google.golang.org/grpc"
)

// These tests run the real svcreg binary, kill it with SIGKILL or stop it
// with SIGTERM, and restart it: what survives is what reached the disk
// (raft-wal fsyncs every append).

var binary string // built once by TestMain

// Every process a test starts shares a bootstrap token (the operator token
// of its cluster, which the tests' clients send) and a cluster secret: a
// durable server has auth on, and a cluster's peer port must admit only
// its own servers.
var (
	testToken      = "svcr_process-tests-operator-token"
	testTokenFile  string
	testSecretFile string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "svcreg-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "svcreg")
	testTokenFile, testSecretFile = filepath.Join(dir, "bootstrap-token"), filepath.Join(dir, "cluster-secret")
	if err := os.WriteFile(testTokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(testSecretFile, []byte("process-tests-cluster-secret\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building svcreg:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one svcreg serve process. Its first start binds port 0 for every
// listener and the test reads the addresses back from its log; a restart
// binds the same addresses again (a Raft member's address is part of the
// cluster's configuration).
type proc struct {
	t    testing.TB
	name string
	args []string
	log  string // its stderr, shown when the test fails

	grpc, http, dns, peer string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	alive atomic.Bool // read by writer goroutines
	conn  atomic.Pointer[grpc.ClientConn]
}

// startProc starts `svcreg serve` with args, which may set listen
// addresses (the default is port 0 on loopback for gRPC, HTTP and DNS),
// and waits until it listens.
func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, log: filepath.Join(t.TempDir(), name+".log")}
	p.args = append([]string{"serve", "--node-id", name}, args...)
	for _, flag := range []string{"--grpc-addr", "--http-addr", "--dns-addr"} {
		if !hasFlag(args, flag) {
			p.args = append(p.args, flag, "127.0.0.1:0")
		}
	}
	for flag, file := range map[string]string{"--bootstrap-token-file": testTokenFile, "--cluster-secret-file": testSecretFile} {
		if !hasFlag(args, flag) && hasFlag(args, "--data-dir") {
			p.args = append(p.args, flag, file)
		}
	}
	t.Cleanup(func() {
		p.kill()
		if conn := p.conn.Load(); conn != nil {
			conn.Close()
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("%s's log:\n%s", p.name, lastLines(string(b), 60))
		}
	})
	p.start()
	p.awaitListening()
	reservedports.Reserve(t, p.grpc, p.http, p.dns, p.peer) // a restart binds them again
	p.redial()
	return p
}

// redial replaces the client connection: after a restart the old one may
// sit in its reconnect backoff, failing fail-fast RPCs for a while.
func (p *proc) redial() {
	p.t.Helper()
	dial, err := clientauth.Config{Token: testToken, CAFile: flagValue(p.args, "--peer-tls-ca"), NoEnv: true}.DialOptions(p.grpc)
	if err != nil {
		p.t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.grpc, dial...)
	if err != nil {
		p.t.Fatal(err)
	}
	if old := p.conn.Swap(conn); old != nil {
		old.Close()
	}
}

// flagValue is the value of a "--flag value" in args, or "".
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

var servingLine = regexp.MustCompile(`msg="svcreg serving" grpc=(\S+) http=(\S*) dns=(\S*) peer=(\S*)`)

// awaitListening reads the bound addresses from the log, and pins them in
// the arguments for restarts.
func (p *proc) awaitListening() {
	p.t.Helper()
	var m []string
	poll(p.t, p.name+" to listen", 30*time.Second, func() bool {
		b, _ := os.ReadFile(p.log)
		if all := servingLine.FindAllStringSubmatch(string(b), -1); len(all) > 0 {
			m = all[len(all)-1]
			return true
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before listening:\n%s", p.name, lastLines(string(b), 30))
		default:
		}
		return false
	})
	p.grpc, p.http, p.dns, p.peer = m[1], m[2], m[3], m[4]
	p.pin("--grpc-addr", p.grpc)
	p.pin("--http-addr", p.http)
	p.pin("--dns-addr", p.dns)
	if p.peer != "" {
		p.pin("--raft-addr", p.peer)
	}
}

// pin sets a flag's value in the arguments for the next start.
func (p *proc) pin(flag, value string) {
	if value == "" {
		return
	}
	for i, a := range p.args {
		if a == flag && i+1 < len(p.args) {
			p.args[i+1] = value
			return
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "--- start %s\n", strings.Join(p.args, " "))
	p.cmd = exec.Command(binary, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.done = done
	p.alive.Store(true)
	cmd := p.cmd
	go func() {
		cmd.Wait()
		f.Close()
		close(done)
	}()
}

// restart starts the process again on the same addresses and waits until
// it listens.
func (p *proc) restart() {
	p.t.Helper()
	p.start()
	p.awaitListening()
	p.redial()
}

// kill sends SIGKILL: no shutdown code runs.
func (p *proc) kill() { p.signal(syscall.SIGKILL) }

// term sends SIGTERM and waits for the graceful stop.
func (p *proc) term() { p.signal(syscall.SIGTERM) }

func (p *proc) signal(sig os.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	p.alive.Store(false)
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// exited waits for the process to exit by itself and returns its log.
func (p *proc) exited(timeout time.Duration) (string, bool) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		p.alive.Store(false)
		b, _ := os.ReadFile(p.log)
		return string(b), true
	case <-time.After(timeout):
		return "", false
	}
}

func (p *proc) registry() svcregv1grpc.RegistryServiceClient {
	return svcregv1grpc.NewRegistryServiceClient(p.conn.Load())
}

// ready reports whether /readyz answers 200 and, for a server with auth
// on, whether it knows the tests' token yet (the cluster's first leader
// makes it just after it is elected).
func (p *proc) ready() bool {
	get, url := http.Get, "http://"+p.http+"/readyz"
	if ca := flagValue(p.args, "--peer-tls-ca"); ca != "" { // the tests' TLS servers share the cluster CA
		pool, err := certs.LoadPool(ca)
		if err != nil {
			p.t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		get, url = c.Get, "https://"+p.http+"/readyz"
	}
	resp, err := get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	if !hasFlag(p.args, "--data-dir") {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = svcregv1grpc.NewTokenServiceClient(p.conn.Load()).WhoAmI(ctx, &svcregv1.WhoAmIRequest{})
	return err == nil
}

func (p *proc) waitReady(timeout time.Duration) {
	p.t.Helper()
	poll(p.t, p.name+" to be ready", timeout, p.ready)
}

// self is this server as ListPeers describes it.
func (p *proc) self(ctx context.Context) (*svcregv1.Peer, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := svcregv1grpc.NewOperatorServiceClient(p.conn.Load()).ListPeers(ctx, &svcregv1.ListPeersRequest{})
	if err != nil {
		return nil, err
	}
	for _, peer := range resp.GetPeers() {
		if peer.GetId() == p.name {
			return peer, nil
		}
	}
	return nil, fmt.Errorf("%s is not in its own configuration", p.name)
}

func (p *proc) state(ctx context.Context) string {
	peer, err := p.self(ctx)
	if err != nil {
		return ""
	}
	return peer.GetState()
}

func poll(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func webService() *svcregv1.Service {
	return &svcregv1.Service{Name: "web", Namespace: "shop", Selector: map[string]string{"app": "web"},
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}}}
}

func webInstance(name string) *svcregv1.Instance {
	return &svcregv1.Instance{Name: name, Namespace: "shop", Ip: "10.0.0.1",
		Labels: map[string]string{"app": "web"}, Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: 8443}}}
}

// leaderOf asks each live server who leads and returns the one that says
// it does.
func leaderOf(t testing.TB, procs []*proc) *proc {
	t.Helper()
	var leader *proc
	poll(t, "a leader", 30*time.Second, func() bool {
		for _, p := range procs {
			if p.alive.Load() && p.state(context.Background()) == "leader" {
				leader = p
				return true
			}
		}
		return false
	})
	return leader
}

// startThree starts a three-server cluster as the README does, each on
// port 0: the first waits for two more, the second joins the first, the
// third joins both and, seeing three servers, bootstraps them all.
func startThree(t testing.TB, extra ...string) []*proc {
	var procs []*proc
	var peers []string
	for i := range 3 {
		id := fmt.Sprintf("n%d", i+1)
		args := append([]string{"--data-dir", t.TempDir(), "--raft-addr", "127.0.0.1:0", "--bootstrap-expect", "3"}, extra...)
		if len(peers) > 0 {
			args = append(args, "--join", strings.Join(peers, ","))
		}
		p := startProc(t, id, args...)
		peers = append(peers, p.peer)
		procs = append(procs, p)
	}
	leaderOf(t, procs)
	for _, p := range procs {
		p.waitReady(30 * time.Second)
	}
	return procs
}
