// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/servicemodel"
)

// tcpSockets counts this namespace's TCP sockets that a process still
// holds (not listening, and not orphaned: the kernel finishes closing
// those by itself) whose local or remote address is addr: the agent's
// side of the connections to a frontend (local) or to a backend (remote).
func tcpSockets(t *testing.T, local, remote string) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := func(addr string) string {
		if addr == "" {
			return ""
		}
		host, port, _ := net.SplitHostPort(addr)
		ip := net.ParseIP(host).To4()
		n, _ := strconv.Atoi(port)
		return strings.ToUpper(fmt.Sprintf("%s:%04X", hex.EncodeToString([]byte{ip[3], ip[2], ip[1], ip[0]}), n))
	}
	wantLocal, wantRemote := enc(local), enc(remote)
	n := 0
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] == "0A" || fields[9] == "0" { // 0A: LISTEN; inode 0: orphaned
			continue
		}
		if wantLocal != "" && fields[1] == wantLocal || wantRemote != "" && fields[2] == wantRemote {
			n++
		}
	}
	return n
}

// openDescriptors counts every descriptor of this process.
func openDescriptors(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// startSilent is a backend that accepts connections and never reads,
// writes nor closes them (until the test ends).
func startSilent(t *testing.T, name, ip string) *echoBackend {
	lis, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	b := &echoBackend{name: name, ip: ip, lis: lis, port: lis.Addr().(*net.TCPAddr).Port}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	return b
}

// TestNeverClosingBackend: a backend that accepts and never reads nor
// closes, 60 clients that send a request and leave, and a bound of 50
// connections. The clients' departure frees the agent's slots and
// sockets within the half-close timeout, and another service is served
// again. Before, each such connection was held forever (the client's
// socket in CLOSE-WAIT) and every service behind the agent stopped.
func TestNeverClosingBackend(t *testing.T) {
	if !insideNetns(t) {
		return
	}
	const bound, clients = 50, 60
	e := startEnv(t, Config{Limits: Limits{Conns: bound, HalfClose: time.Second}})
	e.createService(echoService("stuck", "10.96.5.1", "rr", false))
	silent := startSilent(t, "stuck-1", "127.0.21.1")
	e.register(silent, "stuck", "10.96.5.1")
	e.createService(echoService("other", "10.96.5.2", "rr", false))
	e.register(startEcho(t, "other-1", "127.0.22.1", false), "other", "10.96.5.2")

	base := openDescriptors(t)
	var conns []net.Conn
	for range clients {
		c, err := net.DialTimeout("tcp", "10.96.5.1:80", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		conns = append(conns, c)
	}
	poll(t, "the bound's worth of connections to reach the backend", 20*time.Second, func() bool {
		return silent.accepted.Load() == bound
	})
	held := openDescriptors(t) - base
	// Per proxied connection: the agent's two sockets and its two splice
	// pipes (four descriptors), and the backend's socket, here in the same
	// process; plus the clients' own sockets.
	t.Logf("%d connections held through the agent: %d descriptors in this process, %.1f per connection (the agent's part: 6)",
		bound, held, float64(held-clients)/bound)
	for _, c := range conns {
		c.Close()
	}
	left := time.Now()
	poll(t, "the agent to let go of the departed clients' connections", 30*time.Second, func() bool {
		return tcpSockets(t, "10.96.5.1:80", "") == 0 && tcpSockets(t, "", silent.addr()) == 0 && silent.accepted.Load() == clients
	})
	// The 10 that waited in the backlog were served (and let go) too.
	t.Logf("every slot free %v after the clients left (half-close timeout 1s)", time.Since(left).Round(10*time.Millisecond))
	mustEcho(t, "10.96.5.2:80", []byte("still served"))
}

// TestNoStateLeftBehind: what a killed agent left (its nftables table,
// its chains, the cluster IPs it put on lo) is removed by the next agent
// as it starts, and by Cleanup; an address someone else put on lo is
// never touched.
func TestNoStateLeftBehind(t *testing.T) {
	if !insideNetns(t) {
		return
	}
	if out, err := exec.Command("ip", "addr", "add", "10.96.7.9/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v\n%s", err, out)
	}
	killed := func() { // what an agent has when SIGKILL hits it
		v, err := newVIPs("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := v.ensure(map[string]bool{"10.96.7.1": true, "10.96.7.9": true}, false); err != nil {
			t.Fatal(err)
		}
		dp, err := newNFTables(Config{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		f := &frontend{key: frontKey{"tcp", "10.96.7.1:80"}, service: "shop/left", port: "echo", config: mustConfig(t, "rr")}
		if err := dp.sync(map[frontKey]*frontend{f.key: f}, false); err != nil {
			t.Fatal(err)
		}
		if !hasOwnedAddr(t, "10.96.7.1") || len(ourChains(t)) <= 3 {
			t.Fatal("the killed agent's state is not there")
		}
	}
	killed()
	t.Run("the next agent removes it", func(t *testing.T) {
		startEnv(t, Config{Mode: ModeNFTables})
		poll(t, "the leftover address and chains to go", 20*time.Second, func() bool {
			return !hasOwnedAddr(t, "10.96.7.1") && len(ourChains(t)) == 3
		})
	})
	if hasOwnedAddr(t, "10.96.7.1") || ourTable(t) {
		t.Error("the stopped agent left its state")
	}
	killed()
	if err := Cleanup(); err != nil {
		t.Fatal(err)
	}
	if hasOwnedAddr(t, "10.96.7.1") || ourTable(t) {
		t.Error("Cleanup left the killed agent's state")
	}
	if out, _ := exec.Command("ip", "-4", "addr", "show", "dev", "lo").CombinedOutput(); !strings.Contains(string(out), "10.96.7.9/32") {
		t.Errorf("an address the agent did not add was removed:\n%s", out)
	}
}

func mustConfig(t *testing.T, sched string) *ipvs.Config {
	t.Helper()
	cfg, err := ipvs.Complete(servicemodel.Policy(&svcregv1.Service{Scheduler: sched}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func hasOwnedAddr(t *testing.T, ip string) bool {
	t.Helper()
	owned, err := ownedAddrs(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range owned {
		if a.String() == ip {
			return true
		}
	}
	return false
}

func ourChains(t *testing.T) []string {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range chains {
		if c.Table.Name == nftTable {
			out = append(out, c.Name)
		}
	}
	return out
}

// TestNFTablesRetriesAndResyncs: a batch the kernel refuses leaves the
// agent's memory as it was and is retried until the kernel has the
// frontend; a table changed behind the agent's back is found by the
// periodic full sync and rewritten. All in a namespace with only lo (no
// route covering the cluster IPs): the agent's own addresses make them
// reachable from the node.
func TestNFTablesRetriesAndResyncs(t *testing.T) {
	if !insideNetns(t) {
		return
	}
	old := retryMin
	retryMin = 20 * time.Millisecond
	t.Cleanup(func() { retryMin = old })
	var failures atomic.Int64
	injected := errors.New("injected: the kernel refused the batch")
	var refused atomic.Int64
	e := startEnv(t, Config{Mode: ModeNFTables, ResyncPeriod: 200 * time.Millisecond, started: func(dp dataplane) {
		d := dp.(*nftDataplane)
		flush := d.flush
		d.flush = func() error {
			if failures.Add(-1) >= 0 {
				refused.Add(1)
				d.conn.Flush() // dropped: what a refused batch leaves in the kernel is nothing
				return injected
			}
			return flush()
		}
	}})
	failures.Store(2)
	if _, err := e.reg.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: echoService("retry", "10.96.8.1", "rr", false)}); err != nil {
		t.Fatal(err)
	}
	b := startEcho(t, "retry-1", "127.0.23.1", false)
	if _, err := e.reg.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
		Name: b.name, Namespace: "shop", Ip: b.ip, Labels: map[string]string{"app": "retry"},
		Ports: []*svcregv1.InstancePort{{Name: "echo", Port: int32(b.port)}}}}); err != nil {
		t.Fatal(err)
	}
	reachable := func() bool {
		c, err := net.DialTimeout("tcp", "10.96.8.1:80", time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	// Both injected refusals are met and the frontend works in the end
	// (on a busy machine the periodic full sync may program it between
	// the retries).
	poll(t, "the refused batches to be retried until the frontend works", 20*time.Second, func() bool {
		return refused.Load() == 2 && reachable()
	})
	mustEcho(t, "10.96.8.1:80", []byte("after the retries"))

	// Behind the agent's back: its whole table goes.
	if err := cleanupNFTables(); err != nil {
		t.Fatal(err)
	}
	poll(t, "the periodic full sync to find the table gone and rewrite it", 20*time.Second, func() bool { return ourTable(t) && reachable() })
	mustEcho(t, "10.96.8.1:80", []byte("after the resync"))
}

func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
