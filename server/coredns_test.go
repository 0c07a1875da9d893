// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"google.golang.org/protobuf/proto"
)

// buildCoreDNS builds CoreDNS at the version tools/coredns pins (Go's
// build cache keeps it: 4 min 20 s cold on two cores, 1.5 s warm) and
// returns the executable's path.
func buildCoreDNS(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "tool", "-modfile=../tools/coredns/go.mod", "-n", "coredns").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("building CoreDNS: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("building CoreDNS: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// listeningPorts reads back the ports a process bound (UDP, and TCP in
// LISTEN), from its sockets in /proc: how a test learns where a program
// that took port 0 and does not print it listens.
func listeningPorts(pid int) (udp, tcp []int) {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	read := func(table string, listenOnly bool) (ports []int) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return nil
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			fields := strings.Fields(s.Text())
			if len(fields) < 10 || !inodes[fields[9]] || listenOnly && fields[3] != "0A" {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports = append(ports, int(p))
			}
		}
		return ports
	}
	return read("udp", false), read("tcp", true)
}

// TestCoreDNSAgrees: CoreDNS v1.15.0's kubernetes plugin, pointed at
// svcreg's Kubernetes API (it lists and watches Services, EndpointSlices
// and Namespaces in protobuf), answers A, AAAA, SRV and PTR questions for
// ClusterIP, headless (ready addresses only), ExternalName services and
// named ports as svcreg's own DNS does, for the same objects.
func TestCoreDNSAgrees(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: builds CoreDNS")
	}
	bin := buildCoreDNS(t)
	ts := dnsFixture(t)
	dir := t.TempDir()
	corefile := filepath.Join(dir, "Corefile")
	conf := fmt.Sprintf(".:0 {\n  bind 127.0.0.1\n  kubernetes cluster.local in-addr.arpa ip6.arpa {\n    endpoint %s\n    ttl 5\n  }\n}\n", ts.base)
	if err := os.WriteFile(corefile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", corefile)
	cmd.Dir = dir
	log, err := os.Create(filepath.Join(dir, "coredns.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	coreLog := func() string { b, _ := os.ReadFile(log.Name()); return string(b) }
	var udp []int
	waitFor(t, "CoreDNS to listen", 60*time.Second, func() bool {
		udp, _ = listeningPorts(cmd.Process.Pid)
		return len(udp) > 0
	})
	core := fmt.Sprintf("127.0.0.1:%d", udp[0])
	// The plugin answers once its informers have synced.
	waitFor(t, "CoreDNS to answer from svcreg:\n"+coreLog(), 60*time.Second, func() bool {
		m := new(dns.Msg)
		m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, core)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1
	})

	compare(t, ts.DNSAddr(), core)

	// A change reaches CoreDNS through its watch: a new ready db instance,
	// and web's only one turned not ready.
	ts.mustCreateInstance(t, &svcregv1.Instance{Name: "db-3", Namespace: "shop", Ip: "10.0.1.9", Labels: map[string]string{"app": "db"}})
	notReady := &svcregv1.Instance{Name: "db-2", Namespace: "shop", Ip: "10.0.1.3", Labels: map[string]string{"app": "db"}, Ready: proto.Bool(false)}
	if _, err := ts.client.UpdateInstance(context.Background(), &svcregv1.UpdateInstanceRequest{Instance: notReady}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "CoreDNS to follow the change", 30*time.Second, func() bool {
		got := withoutTTL(query(t, core, "udp", "db.shop.svc.cluster.local.", dns.TypeA).Answer)
		return slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, " 10.0.1.9") }) &&
			!slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, " 10.0.1.3") })
	})
	compare(t, ts.DNSAddr(), core)
}

// compare asks svcreg's DNS and CoreDNS the same questions.
func compare(t *testing.T, svcregDNS, coreDNS string) {
	t.Helper()
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.shop.svc.cluster.local.", dns.TypeA},
		{"web.shop.svc.cluster.local.", dns.TypeAAAA},
		{"_grpc._tcp.web.shop.svc.cluster.local.", dns.TypeSRV},
		{"_http._tcp.web.shop.svc.cluster.local.", dns.TypeSRV},
		{"db.shop.svc.cluster.local.", dns.TypeA},
		{"db.shop.svc.cluster.local.", dns.TypeAAAA},
		{"db-0.db.shop.svc.cluster.local.", dns.TypeA},
		{"_sql._tcp.db.shop.svc.cluster.local.", dns.TypeSRV},
		{"peers.shop.svc.cluster.local.", dns.TypeA},
		{"empty.shop.svc.cluster.local.", dns.TypeA},
		{"ext.shop.svc.cluster.local.", dns.TypeCNAME},
		{"nothing.shop.svc.cluster.local.", dns.TypeA},
		{"10.0.96.10.in-addr.arpa.", dns.TypePTR},
		{"1.1.0.10.in-addr.arpa.", dns.TypePTR},
	} {
		t.Run(fmt.Sprintf("%s %s", q.name, dns.TypeToString[q.qtype]), func(t *testing.T) {
			own, theirs := query(t, svcregDNS, "udp", q.name, q.qtype), query(t, coreDNS, "udp", q.name, q.qtype)
			if own.Rcode != theirs.Rcode {
				t.Errorf("rcode: svcreg %s, CoreDNS %s", dns.RcodeToString[own.Rcode], dns.RcodeToString[theirs.Rcode])
			}
			if a, b := withoutTTL(own.Answer), withoutTTL(theirs.Answer); !slices.Equal(a, b) {
				t.Errorf("answers differ:\nsvcreg:  %q\nCoreDNS: %q", a, b)
			}
		})
	}
}

// withoutTTL renders records as "name TYPE data", sorted, with what the
// Kubernetes DNS specification leaves to the server set aside: the TTL
// (configured apart), and an SRV record's weight (svcreg gives each
// endpoint's scheduling weight, CoreDNS splits 100 evenly: docs/kubernetes.md).
func withoutTTL(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if srv, ok := rr.(*dns.SRV); ok {
			c := *srv
			c.Weight = 0
			rr = &c
		}
		h := rr.Header()
		out = append(out, h.Name+" "+dns.TypeToString[h.Rrtype]+" "+strings.TrimPrefix(rr.String(), h.String()))
	}
	slices.Sort(out)
	return out
}
