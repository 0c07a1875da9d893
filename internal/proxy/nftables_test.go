// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// echoFrom echoes one byte through addr from a client address.
func echoFrom(t *testing.T, from *net.TCPAddr, addr string) {
	t.Helper()
	d := net.Dialer{LocalAddr: from, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from.IP, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("echo through %s from %s: %v", addr, from.IP, err)
	}
}

// changedBackend names the backend whose count moved since before.
func changedBackend(bs []*echoBackend, before string) string {
	was := strings.Fields(before)
	for i, now := range strings.Fields(counts(bs)) {
		if now != was[i] {
			return bs[i].name
		}
	}
	return "none"
}

func ourTable(t *testing.T) bool {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == nftTable {
			return true
		}
	}
	return false
}

// TestNFTables is the nftables data plane end to end, in a network
// namespace: clients dial cluster IPs and a node port, the kernel's DNAT
// sends them to the backends, weighted; backends that leave get no new
// connection; the table is gone once the agent stops.
func TestNFTables(t *testing.T) {
	if !insideNetns(t) {
		return
	}
	func() {
		e := startEnv(t, Config{Mode: ModeNFTables, BindAddress: "0.0.0.0"})
		t.Run("echo through a cluster IP", func(t *testing.T) {
			e.createService(echoService("nbytes", "10.96.3.1", "rr", false))
			e.register(startEcho(t, "nbytes-1", "127.0.11.1", false), "nbytes", "10.96.3.1")
			data := make([]byte, 1<<20)
			for i := range data {
				data[i] = byte(i * 7)
			}
			mustEcho(t, "10.96.3.1:80", data)
		})
		t.Run("weighted spread and removal", func(t *testing.T) {
			e.createService(echoService("nspread", "10.96.3.2", "wrr", false))
			bs := []*echoBackend{startEcho(t, "nspread-1", "127.0.12.1", false), startEcho(t, "nspread-2", "127.0.12.2", false)}
			for _, b := range bs {
				e.register(b, "nspread", "10.96.3.2")
			}
			for range 200 {
				mustEcho(t, "10.96.3.2:80", []byte("x"))
			}
			for _, b := range bs {
				// Random with p = 1/2 over 200: under 40 has probability < 1e-17.
				if n := b.accepted.Load(); n < 40 {
					t.Errorf("weighted random over 200 connections: %s", counts(bs))
				}
			}
			e.deregister(bs[1], "10.96.3.2")
			n := bs[1].accepted.Load()
			for range 50 {
				mustEcho(t, "10.96.3.2:80", []byte("y"))
			}
			if bs[1].accepted.Load() != n {
				t.Errorf("a removed backend got %d new connections", bs[1].accepted.Load()-n)
			}
		})
		t.Run("ClientIP affinity", func(t *testing.T) {
			svc := echoService("nsticky", "10.96.3.5", "rr", false)
			svc.SessionAffinity = svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP
			e.createService(svc)
			bs := []*echoBackend{startEcho(t, "nsticky-1", "127.0.15.1", false), startEcho(t, "nsticky-2", "127.0.15.2", false)}
			for _, b := range bs {
				e.register(b, "nsticky", "10.96.3.5")
			}
			// 40 clients, 3 connections each: each client's land on one
			// backend, and the clients are spread (all 40 on one backend
			// by chance: 2^-39).
			firsts := map[string]int{}
			for c := 1; c <= 40; c++ {
				from := &net.TCPAddr{IP: net.IPv4(127, 0, 50, byte(c))}
				first := ""
				for range 3 {
					before := counts(bs)
					echoFrom(t, from, "10.96.3.5:80")
					got := changedBackend(bs, before)
					if first == "" {
						first = got
					} else if got != first {
						t.Fatalf("client %s went to %s after %s with ClientIP affinity", from.IP, got, first)
					}
				}
				firsts[first]++
			}
			if len(firsts) != 2 {
				t.Errorf("40 clients' first connections: %v, want both backends", firsts)
			}
		})
		t.Run("UDP", func(t *testing.T) {
			e.createService(echoService("ndns", "10.96.3.3", "rr", true))
			e.register(startEcho(t, "ndns-1", "127.0.13.1", true), "ndns", "10.96.3.3")
			c, err := net.Dial("udp", "10.96.3.3:80")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("hi"))
			buf := make([]byte, 64)
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ndns-1:hi" {
				t.Fatalf("UDP through the cluster IP: %q, %v", buf[:n], err)
			}
		})
		t.Run("NodePort on every node address", func(t *testing.T) {
			// The agent serves node ports on 0.0.0.0: any of the node's own
			// addresses, here loopback and a second one (on lo: this kernel
			// has no dummy interfaces), which no map element names.
			if out, err := exec.Command("ip", "addr", "add", "192.0.2.1/32", "dev", "lo").CombinedOutput(); err != nil {
				t.Fatalf("ip addr add: %v\n%s", err, out)
			}
			svc := echoService("nnode", "10.96.3.4", "rr", false)
			svc.Type = svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT
			created := e.createService(svc)
			e.register(startEcho(t, "nnode-1", "127.0.14.1", false), "nnode", "10.96.3.4")
			port := strconv.Itoa(int(created.GetPorts()[0].GetNodePort()))
			for _, node := range []string{"127.0.0.1", "192.0.2.1"} {
				mustEcho(t, net.JoinHostPort(node, port), []byte("n"))
			}
		})
		if !ourTable(t) {
			t.Fatal("the agent's table is not there while it runs")
		}
	}()
}

// TestNFTablesTableGoneAfterExit: stopping the agent removes its table,
// and Cleanup removes one a crash left behind.
func TestNFTablesTableGoneAfterExit(t *testing.T) {
	if !insideNetns(t) {
		return
	}
	t.Run("exit", func(t *testing.T) {
		e := startEnv(t, Config{Mode: ModeNFTables})
		e.createService(echoService("gone", "10.96.4.1", "rr", false))
		if !ourTable(t) {
			t.Fatal("no table while the agent runs")
		}
	}) // the subtest's cleanups stop the agent
	if ourTable(t) {
		t.Errorf("the table is still there after the agent stopped")
	}
	d, err := newNFTables(Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_ = d // as a crashed agent leaves it
	if err := Cleanup(); err != nil || ourTable(t) {
		t.Errorf("Cleanup: %v; table still there: %v", err, ourTable(t))
	}
}
