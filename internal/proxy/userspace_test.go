// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

func echoService(name, ip string, sched string, udp bool) *svcregv1.Service {
	proto := svcregv1.Protocol_PROTOCOL_TCP
	if udp {
		proto = svcregv1.Protocol_PROTOCOL_UDP
	}
	return &svcregv1.Service{Name: name, Namespace: "shop", ClusterIp: ip, Selector: map[string]string{"app": name}, Scheduler: sched,
		Ports: []*svcregv1.ServicePort{{Name: "echo", Port: 80, TargetPort: "echo", Protocol: proto}}}
}

// TestUserspace is the userspace data plane end to end, in a network
// namespace: a registry, the agent, echo backends on loopback addresses,
// and clients dialling cluster IPs the agent put on lo.
func TestUserspace(t *testing.T) {
	if !insideNetns(t) {
		return
	}
	e := startEnv(t, Config{BindAddress: "127.0.0.1"})
	t.Run("byte-exact echo with half-close", func(t *testing.T) {
		e.createService(echoService("bytes", "10.96.1.1", "rr", false))
		e.register(startEcho(t, "bytes-1", "127.0.1.1", false), "bytes", "10.96.1.1")
		data := make([]byte, 4<<20)
		rand.Read(data)
		mustEcho(t, "10.96.1.1:80", data)
	})
	t.Run("rr over 300 connections", func(t *testing.T) {
		e.createService(echoService("rr", "10.96.1.2", "rr", false))
		bs := []*echoBackend{startEcho(t, "rr-1", "127.0.2.1", false), startEcho(t, "rr-2", "127.0.2.2", false), startEcho(t, "rr-3", "127.0.2.3", false)}
		for _, b := range bs {
			e.register(b, "rr", "10.96.1.2")
		}
		for range 300 {
			mustEcho(t, "10.96.1.2:80", []byte("x"))
		}
		for _, b := range bs {
			if b.accepted.Load() != 100 {
				t.Errorf("rr spread 300 connections as %s, want 100 each", counts(bs))
				break
			}
		}
	})
	t.Run("lc with long-held connections", func(t *testing.T) {
		// lc ranks by open connections (256*active + inactive): with
		// connections that stay open the choice is exact. Two backends take
		// four; a third joins and takes the next two (rr would split them),
		// then each takes one.
		e.createService(echoService("lc", "10.96.1.3", "lc", false))
		bs := []*echoBackend{startEcho(t, "lc-1", "127.0.3.1", false), startEcho(t, "lc-2", "127.0.3.2", false), startEcho(t, "lc-3", "127.0.3.3", false)}
		hold := func(n int) {
			for range n {
				c, err := net.Dial("tcp", "10.96.1.3:80")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				mustRoundTrip(t, c) // picked and counted
			}
		}
		e.register(bs[0], "lc", "10.96.1.3")
		e.register(bs[1], "lc", "10.96.1.3")
		hold(4)
		e.register(bs[2], "lc", "10.96.1.3")
		hold(2)
		if got := counts(bs); got != "lc-1=2 lc-2=2 lc-3=2" {
			t.Errorf("lc after 4 connections on two backends and 2 more with a third: %s, want lc-1=2 lc-2=2 lc-3=2", got)
		}
		hold(3)
		if got := counts(bs); got != "lc-1=3 lc-2=3 lc-3=3" {
			t.Errorf("lc after 3 more: %s, want lc-1=3 lc-2=3 lc-3=3", got)
		}
	})
	t.Run("a refused backend is skipped", func(t *testing.T) {
		e.createService(echoService("refuse", "10.96.1.4", "rr", false))
		up, gone := startEcho(t, "refuse-1", "127.0.4.1", false), startEcho(t, "refuse-2", "127.0.4.2", false)
		e.register(up, "refuse", "10.96.1.4")
		e.register(gone, "refuse", "10.96.1.4")
		gone.lis.Close() // registered and ready, but refusing
		for range 30 {
			mustEcho(t, "10.96.1.4:80", []byte("z"))
		}
		if up.accepted.Load() != 30 {
			t.Errorf("30 connections with one backend refusing: %s", counts([]*echoBackend{up, gone}))
		}
	})
	t.Run("a removed backend gets no new connection, its open one finishes", func(t *testing.T) {
		e.createService(echoService("drain", "10.96.1.5", "rr", false))
		stay, leave := startEcho(t, "drain-1", "127.0.5.1", false), startEcho(t, "drain-2", "127.0.5.2", false)
		e.register(stay, "drain", "10.96.1.5")
		e.register(leave, "drain", "10.96.1.5")
		var open net.Conn
		for open == nil { // an open connection on the backend that leaves
			c, err := net.Dial("tcp", "10.96.1.5:80")
			if err != nil {
				t.Fatal(err)
			}
			mustRoundTrip(t, c)
			if leave.accepted.Load() > 0 {
				open = c
				defer c.Close()
			} else {
				c.Close()
			}
		}
		e.deregister(leave, "10.96.1.5")
		n := leave.accepted.Load()
		for range 30 {
			mustEcho(t, "10.96.1.5:80", []byte("w"))
		}
		if leave.accepted.Load() != n {
			t.Errorf("the removed backend got %d new connections after its removal", leave.accepted.Load()-n)
		}
		mustRoundTrip(t, open) // still served
	})
	t.Run("ClientIP affinity", func(t *testing.T) {
		svc := echoService("sticky", "10.96.1.6", "rr", false)
		svc.SessionAffinity = svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP
		e.createService(svc)
		bs := []*echoBackend{startEcho(t, "sticky-1", "127.0.6.1", false), startEcho(t, "sticky-2", "127.0.6.2", false), startEcho(t, "sticky-3", "127.0.6.3", false)}
		for _, b := range bs {
			e.register(b, "sticky", "10.96.1.6")
		}
		for range 20 {
			mustEcho(t, "10.96.1.6:80", []byte("s"))
		}
		used := 0
		for _, b := range bs {
			if b.accepted.Load() > 0 {
				used++
			}
		}
		if used != 1 {
			t.Errorf("20 connections from one client with ClientIP affinity: %s, want one backend", counts(bs))
		}
	})
	t.Run("UDP", func(t *testing.T) {
		e.createService(echoService("dns", "10.96.1.7", "rr", true))
		e.register(startEcho(t, "dns-1", "127.0.7.1", true), "dns", "10.96.1.7")
		c, err := net.Dial("udp", "10.96.1.7:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		big := bytes.Repeat([]byte("u"), 60<<10) // larger than kube-proxy's old 4 KiB buffers
		for _, msg := range [][]byte{[]byte("hello"), big} {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, maxDatagram)
			n, err := c.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], append([]byte("dns-1:"), msg...)) {
				t.Fatalf("UDP through the cluster IP: %d bytes, %v", n, err)
			}
		}
	})
	t.Run("NodePort on the node address", func(t *testing.T) {
		svc := echoService("node", "10.96.1.8", "rr", false)
		svc.Type = svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT
		created := e.createService(svc)
		e.register(startEcho(t, "node-1", "127.0.8.1", false), "node", "10.96.1.8")
		port := created.GetPorts()[0].GetNodePort()
		if port == 0 {
			t.Fatal("no node port allocated")
		}
		mustEcho(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), []byte("n"))
	})
}

// mustRoundTrip writes a line on an open connection and reads it back.
func mustRoundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("round trip on an open connection: %q, %v", buf, err)
	}
}

// TestUserspaceBoundsDescriptors: 10,000 short connections through one
// cluster IP, 8 dialers at a time, with the connection bound at 4: every
// one is served (those over the bound wait in the listen backlog), and
// the process never holds more sockets than the bound allows.
func TestUserspaceBoundsDescriptors(t *testing.T) {
	if !insideNetns(t) {
		return
	}
	const bound = 4
	e := startEnv(t, Config{Limits: Limits{Conns: bound}})
	e.createService(echoService("many", "10.96.2.1", "rr", false))
	e.register(startEcho(t, "many-1", "127.0.9.1", false), "many", "10.96.2.1")
	base := openFDs(t)
	peak := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1250 {
				mustEcho(t, "10.96.2.1:80", []byte(fmt.Sprint(w, i)))
				if i%50 == 0 {
					n := openFDs(t)
					mu.Lock()
					peak = max(peak, n)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	// Each proxied connection holds two sockets in the agent and one in
	// the backend; the dialers hold at most 8.
	if limit := base + 3*bound + 8 + 8; peak > limit {
		t.Errorf("%d sockets open at the peak (base %d), over %d", peak, base, limit)
	}
	t.Logf("10000 connections; sockets: base %d, peak %d", base, peak)
}

// openFDs counts this process's open sockets (the pipes Go's splice
// keeps in a pool are not connections, and the race detector's pool
// drops them late).
func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}
