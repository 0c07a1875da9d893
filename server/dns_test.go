// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// dnsFixture fills a registry with the services the record tests query.
func dnsFixture(t testing.TB) *testServer {
	t.Helper()
	ts := startServer(t, Config{})
	svc := func(s *svcregv1.Service) { ts.mustCreateService(t, s) }
	inst := func(name, ip, app string, mod func(*svcregv1.Instance)) {
		i := &svcregv1.Instance{Name: name, Namespace: "shop", Ip: ip, Labels: map[string]string{"app": app},
			Ports: []*svcregv1.InstancePort{{Name: "sql", Port: 5432}, {Name: "grpc", Port: 8443}}}
		if mod != nil {
			mod(i)
		}
		ts.mustCreateInstance(t, i)
	}
	svc(&svcregv1.Service{Name: "web", Namespace: "shop", ClusterIp: "10.96.0.10", Selector: map[string]string{"app": "web"},
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}, {Name: "http", Port: 80}}})
	inst("web-1", "10.0.0.1", "web", nil)
	svc(&svcregv1.Service{Name: "db", Namespace: "shop", ClusterIp: "None", Selector: map[string]string{"app": "db"},
		Ports: []*svcregv1.ServicePort{{Name: "sql", Port: 5432, TargetPort: "sql"}}})
	inst("db-0", "10.0.1.1", "db", func(i *svcregv1.Instance) { i.Hostname, i.Subdomain, i.Weight = "db-0", "db", proto.Uint32(5) })
	inst("db-1", "10.0.1.2", "db", func(i *svcregv1.Instance) { i.Hostname, i.Subdomain = "db-1", "db" })
	inst("db-2", "10.0.1.3", "db", nil)
	inst("db-nr", "10.0.1.4", "db", func(i *svcregv1.Instance) { i.Ready = proto.Bool(false) })
	inst("db-v6", "fd00::5", "db", nil)
	svc(&svcregv1.Service{Name: "ext", Namespace: "shop", Type: svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, ExternalName: "db.example.com",
		Ports: []*svcregv1.ServicePort{{Port: 5432}}})
	svc(&svcregv1.Service{Name: "empty", Namespace: "shop", ClusterIp: "None", Selector: map[string]string{"app": "nobody"}})
	svc(&svcregv1.Service{Name: "peers", Namespace: "shop", ClusterIp: "None", Selector: map[string]string{"app": "peer"}, PublishNotReadyAddresses: true})
	inst("peer-0", "10.0.2.1", "peer", func(i *svcregv1.Instance) { i.Ready = proto.Bool(false) })
	return ts
}

// query asks the server over net ("udp" or "tcp").
func query(t *testing.T, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

// rdata renders a section as "TYPE data" lines, sorted.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, dns.TypeToString[rr.Header().Rrtype]+" "+strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	slices.Sort(out)
	return out
}

func TestDNSRecords(t *testing.T) {
	ts := dnsFixture(t)
	const zone = "svc.cluster.local."
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string
		soa    bool // SOA in the authority section
	}{
		{"web.shop." + zone, dns.TypeA, dns.RcodeSuccess, []string{"A 10.96.0.10"}, nil, false},
		{"WEB.Shop.SVC.Cluster.Local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.96.0.10"}, nil, false},
		{"web.shop." + zone, dns.TypeAAAA, dns.RcodeSuccess, nil, nil, true}, // NODATA
		{"web.shop." + zone, dns.TypeTXT, dns.RcodeSuccess, nil, nil, true},
		{"nope.shop." + zone, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"db.shop." + zone, dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.1", "A 10.0.1.2", "A 10.0.1.3"}, nil, false},
		{"db.shop." + zone, dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA fd00::5"}, nil, false},
		{"db-0.db.shop." + zone, dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.1"}, nil, false},
		{"10-0-1-3.db.shop." + zone, dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.3"}, nil, false},
		{"10-0-1-4.db.shop." + zone, dns.TypeA, dns.RcodeNameError, nil, nil, true}, // not ready
		{"db-9.db.shop." + zone, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"web-1.web.shop." + zone, dns.TypeA, dns.RcodeNameError, nil, nil, true}, // not headless
		{"_sql._tcp.db.shop." + zone, dns.TypeSRV, dns.RcodeSuccess, []string{
			"SRV 0 1 5432 10-0-1-3.db.shop.svc.cluster.local.", "SRV 0 1 5432 db-1.db.shop.svc.cluster.local.",
			"SRV 0 1 5432 fd00--5.db.shop.svc.cluster.local.", "SRV 0 5 5432 db-0.db.shop.svc.cluster.local."},
			[]string{"A 10.0.1.1", "A 10.0.1.2", "A 10.0.1.3", "AAAA fd00::5"}, false},
		{"_grpc._tcp.web.shop." + zone, dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 100 443 web.shop.svc.cluster.local."}, []string{"A 10.96.0.10"}, false},
		{"_grpc._udp.web.shop." + zone, dns.TypeSRV, dns.RcodeNameError, nil, nil, true},
		{"_nope._tcp.web.shop." + zone, dns.TypeSRV, dns.RcodeNameError, nil, nil, true},
		{"_tcp.web.shop." + zone, dns.TypeSRV, dns.RcodeSuccess, nil, nil, true}, // empty non-terminal
		{"_grpc._tcp.web.shop." + zone, dns.TypeA, dns.RcodeSuccess, nil, nil, true},
		{"ext.shop." + zone, dns.TypeA, dns.RcodeSuccess, []string{"CNAME db.example.com."}, nil, false},
		{"empty.shop." + zone, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"peers.shop." + zone, dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.2.1"}, nil, false},
		{"dns-version.cluster.local.", dns.TypeTXT, dns.RcodeSuccess, []string{`TXT "1.1.0"`}, nil, false},
		{"cluster.local.", dns.TypeSOA, dns.RcodeSuccess, []string{"SOA ns.dns.cluster.local. hostmaster.cluster.local. %d 7200 1800 86400 5"}, nil, false},
		{"shop." + zone, dns.TypeA, dns.RcodeSuccess, nil, nil, true},
		{"nons." + zone, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{zone, dns.TypeA, dns.RcodeSuccess, nil, nil, true},
		{"web.shop.pod.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"example.com.", dns.TypeA, dns.RcodeRefused, nil, nil, false},
		{"10.0.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR web.shop.svc.cluster.local."}, nil, false},
		{"1.1.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR db-0.db.shop.svc.cluster.local."}, nil, false},
		{"99.0.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil, nil, true},
		{"8.8.8.8.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, nil, nil, false},
	}
	rev := ts.store.Revision()
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
				resp := query(t, ts.DNSAddr(), network, tt.name, tt.qtype)
				if resp.Rcode != tt.rcode {
					t.Fatalf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
				}
				want := slices.Clone(tt.answer)
				for i, w := range want {
					if strings.Contains(w, "%d") {
						want[i] = fmt.Sprintf(w, rev)
					}
				}
				if got := rdata(resp.Answer); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("answer %q, want %q", got, want)
				}
				if tt.extra != nil {
					if got := rdata(resp.Extra); strings.Join(got, "|") != strings.Join(tt.extra, "|") {
						t.Errorf("additional %q, want %q", got, tt.extra)
					}
				}
				hasSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA
				if hasSOA != tt.soa {
					t.Errorf("authority %v, want SOA: %v", resp.Ns, tt.soa)
				}
				for _, rr := range resp.Answer {
					if rr.Header().Name != tt.name {
						t.Errorf("owner %q, want the question's %q", rr.Header().Name, tt.name)
					}
				}
				if tt.rcode != dns.RcodeRefused && !resp.Authoritative {
					t.Errorf("not authoritative")
				}
				if resp.RecursionAvailable {
					t.Errorf("recursion available")
				}
			})
		}
	}
}

// TestDNSSeesWritesAtOnce: no cache, no lag.
func TestDNSSeesWritesAtOnce(t *testing.T) {
	ts := dnsFixture(t)
	name := "db.shop.svc.cluster.local."
	ts.mustPatchInstance(t, &svcregv1.Instance{Name: "db-2", Namespace: "shop", Ready: proto.Bool(false)}, "ready")
	if got := rdata(query(t, ts.DNSAddr(), "udp", name, dns.TypeA).Answer); len(got) != 2 {
		t.Errorf("after db-2 went not ready: %v", got)
	}
	ts.client.DeleteService(context.Background(), &svcregv1.DeleteServiceRequest{Namespace: "shop", Name: "db"})
	if resp := query(t, ts.DNSAddr(), "udp", name, dns.TypeA); resp.Rcode != dns.RcodeNameError {
		t.Errorf("after delete: %s", dns.RcodeToString[resp.Rcode])
	}
}

// TestDNSTruncation: 500 endpoints do not fit a UDP answer: TC is set and
// the same question over TCP gets them all.
func TestDNSTruncation(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ts.mustCreateService(t, &svcregv1.Service{Name: "big", Namespace: "shop", ClusterIp: "None", Selector: map[string]string{"app": "big"},
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443}}})
	for i := range 500 {
		ts.mustCreateInstance(t, &svcregv1.Instance{Name: fmt.Sprint("big-", i), Namespace: "shop", Ip: fmt.Sprintf("10.1.%d.%d", i/256, i%256),
			Labels: map[string]string{"app": "big"}})
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"big.shop.svc.cluster.local.", dns.TypeA}, {"_grpc._tcp.big.shop.svc.cluster.local.", dns.TypeSRV}} {
		udp := query(t, ts.DNSAddr(), "udp", q.name, q.qtype)
		if !udp.Truncated || len(udp.Answer) >= 500 {
			t.Errorf("%s over UDP: truncated %v with %d records", q.name, udp.Truncated, len(udp.Answer))
		}
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(4096, false)
		edns, _, err := (&dns.Client{Net: "udp"}).Exchange(m, ts.DNSAddr())
		if err == nil {
			edns.Compress = true // as it was sent
		}
		if err != nil || !edns.Truncated || edns.IsEdns0() == nil || edns.Len() > 4096 {
			t.Errorf("%s with EDNS0: %v, truncated %v, %d bytes", q.name, err, edns != nil && edns.Truncated, edns.Len())
		}
		tcp := query(t, ts.DNSAddr(), "tcp", q.name, q.qtype)
		if tcp.Truncated || len(tcp.Answer) != 500 {
			t.Errorf("%s over TCP: truncated %v with %d records", q.name, tcp.Truncated, len(tcp.Answer))
		}
	}
}

func TestResolveAndEnvironmentAPIs(t *testing.T) {
	ts := dnsFixture(t)
	ctx := context.Background()
	resp, err := ts.client.Resolve(ctx, &svcregv1.ResolveRequest{Name: "_sql._tcp.db.shop.svc.cluster.local", Type: "srv"})
	if err != nil || resp.GetRcode() != "NOERROR" || len(resp.GetAnswer()) != 4 || len(resp.GetAdditional()) != 4 {
		t.Fatalf("Resolve SRV: %v %v", resp, err)
	}
	for _, rec := range resp.GetAnswer() {
		if rec.GetType() != "SRV" || rec.GetPort() != 5432 || rec.GetTarget() == "" || rec.GetData() == "" {
			t.Errorf("record %v", rec)
		}
	}
	// The same code path as DNS: the answers match.
	dnsAns := rdata(query(t, ts.DNSAddr(), "udp", "_sql._tcp.db.shop.svc.cluster.local.", dns.TypeSRV).Answer)
	var apiAns []string
	for _, rec := range resp.GetAnswer() {
		apiAns = append(apiAns, rec.GetType()+" "+rec.GetData())
	}
	slices.Sort(apiAns)
	if strings.Join(apiAns, "|") != strings.Join(dnsAns, "|") {
		t.Errorf("Resolve %v, DNS %v", apiAns, dnsAns)
	}
	// A short name is tried under svc.<zone>.
	short, err := ts.client.Resolve(ctx, &svcregv1.ResolveRequest{Name: "web.shop"})
	if err != nil || len(short.GetAnswer()) != 1 || short.GetAnswer()[0].GetAddress() != "10.96.0.10" {
		t.Errorf("short name: %v %v", short, err)
	}
	nx, _ := ts.client.Resolve(ctx, &svcregv1.ResolveRequest{Name: "nope.shop.svc.cluster.local"})
	if nx.GetRcode() != "NXDOMAIN" || len(nx.GetAuthority()) != 1 {
		t.Errorf("NXDOMAIN: %v", nx)
	}
	for _, bad := range []*svcregv1.ResolveRequest{{}, {Name: "web.shop", Type: "BOGUS"}, {Name: "a..b"}} {
		if _, err := ts.client.Resolve(ctx, bad); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
	code, body := ts.do(t, "GET", "/v1/resolve?name=web.shop.svc.cluster.local&type=A", "")
	if code != 200 || body["rcode"] != "NOERROR" {
		t.Errorf("REST resolve: %d %v", code, body)
	}
	code, env := ts.do(t, "GET", "/v1/namespaces/shop/environment", "")
	if code != 200 || len(asSlice(env["variables"])) == 0 {
		t.Errorf("REST environment: %d %v", code, env)
	}
}

// TestEnvironmentGolden is Kubernetes' documented example: a redis-master
// service at 10.0.0.11:6379.
func TestEnvironmentGolden(t *testing.T) {
	ts := startServer(t, Config{ServiceCIDR: "10.0.0.0/24"})
	ts.mustCreateService(t, &svcregv1.Service{Name: "redis-master", Namespace: "default", ClusterIp: "10.0.0.11",
		Ports: []*svcregv1.ServicePort{{Port: 6379}}})
	ts.mustCreateService(t, &svcregv1.Service{Name: "api-gw", Namespace: "default", ClusterIp: "10.0.0.12",
		Ports: []*svcregv1.ServicePort{{Name: "https", Port: 443}, {Name: "dns-udp", Port: 53, Protocol: svcregv1.Protocol_PROTOCOL_UDP}}})
	ts.mustCreateService(t, &svcregv1.Service{Name: "headless", Namespace: "default", ClusterIp: "None"})
	ts.mustCreateService(t, &svcregv1.Service{Name: "ext", Namespace: "default", Type: svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, ExternalName: "x.example.com"})
	resp, err := ts.client.GetEnvironment(context.Background(), &svcregv1.GetEnvironmentRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range resp.GetVariables() {
		got = append(got, v.GetName()+"="+v.GetValue())
	}
	want := []string{
		"API_GW_SERVICE_HOST=10.0.0.12",
		"API_GW_SERVICE_PORT=443",
		"API_GW_SERVICE_PORT_HTTPS=443",
		"API_GW_SERVICE_PORT_DNS_UDP=53",
		"API_GW_PORT=tcp://10.0.0.12:443",
		"API_GW_PORT_443_TCP=tcp://10.0.0.12:443",
		"API_GW_PORT_443_TCP_PROTO=tcp",
		"API_GW_PORT_443_TCP_PORT=443",
		"API_GW_PORT_443_TCP_ADDR=10.0.0.12",
		"API_GW_PORT_53_UDP=udp://10.0.0.12:53",
		"API_GW_PORT_53_UDP_PROTO=udp",
		"API_GW_PORT_53_UDP_PORT=53",
		"API_GW_PORT_53_UDP_ADDR=10.0.0.12",
		"REDIS_MASTER_SERVICE_HOST=10.0.0.11",
		"REDIS_MASTER_SERVICE_PORT=6379",
		"REDIS_MASTER_PORT=tcp://10.0.0.11:6379",
		"REDIS_MASTER_PORT_6379_TCP=tcp://10.0.0.11:6379",
		"REDIS_MASTER_PORT_6379_TCP_PROTO=tcp",
		"REDIS_MASTER_PORT_6379_TCP_PORT=6379",
		"REDIS_MASTER_PORT_6379_TCP_ADDR=10.0.0.11",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// nameBackend is a gRPC backend that answers with its address.
type nameBackend struct {
	testgrpc.UnimplementedTestServiceServer
	addr string
}

func (b *nameBackend) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	grpc.SetHeader(ctx, metadata.Pairs("backend", b.addr))
	return &testgrpc.Empty{}, nil
}

// sharedPortListeners listens on one port of each address: the first
// picks a free port, and when another address has it in use already (a
// connection's local port, another test's listener), another port is
// tried. It skips only when an address cannot be bound at all.
func sharedPortListeners(t *testing.T, ips ...string) []net.Listener {
	t.Helper()
	for range 50 {
		first, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		listeners := []net.Listener{first}
		for _, ip := range ips[1:] {
			lis, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if errors.Is(err, syscall.EADDRINUSE) {
				break // try another port
			}
			if err != nil {
				t.Skipf("loopback %s unavailable: %v", ip, err)
			}
			listeners = append(listeners, lis)
		}
		if len(listeners) == len(ips) {
			for _, lis := range listeners {
				t.Cleanup(func() { lis.Close() })
			}
			return listeners
		}
		for _, lis := range listeners {
			lis.Close()
		}
	}
	t.Fatalf("no port free on all of %v in 50 tries", ips)
	return nil
}

// TestGRPCDNSResolver: grpc-go's own dns resolver, pointed at svcreg's DNS
// server, reaches the three backends of a headless service with
// round_robin.
func TestGRPCDNSResolver(t *testing.T) {
	ts := startServer(t, Config{})
	// Three backends on one port of three loopback addresses.
	listeners := sharedPortListeners(t, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	port := listeners[0].Addr().(*net.TCPAddr).Port
	ts.mustCreateService(t, &svcregv1.Service{Name: "web", Namespace: "shop", ClusterIp: "None", Selector: map[string]string{"app": "web"},
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: int32(port)}}})
	for i, lis := range listeners {
		srv := grpc.NewServer()
		testgrpc.RegisterTestServiceServer(srv, &nameBackend{addr: lis.Addr().String()})
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		ts.mustCreateInstance(t, &svcregv1.Instance{Name: fmt.Sprint("web-", i), Namespace: "shop",
			Ip: lis.Addr().(*net.TCPAddr).IP.String(), Labels: map[string]string{"app": "web"}})
	}
	conn, err := grpc.NewClient(fmt.Sprintf("dns://%s/web.shop.svc.cluster.local:%d", ts.DNSAddr(), port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := testgrpc.NewTestServiceClient(conn)
	var mu sync.Mutex
	seen := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// round_robin sends to the backends READY so far: keep calling (bounded)
	// until the last one has connected and answered.
	for i := 0; i < 3000 && len(seen) < 3; i++ {
		var md metadata.MD
		if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}, grpc.Header(&md), grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		seen[md.Get("backend")[0]]++
		mu.Unlock()
	}
	if len(seen) != 3 {
		t.Errorf("RPCs reached %v, want all three backends", seen)
	}
}

// FuzzDNSReply feeds arbitrary messages to the handler: never a panic, and
// every reply packs.
func FuzzDNSReply(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"web.shop.svc.cluster.local.", dns.TypeA}, {"_grpc._tcp.web.shop.svc.cluster.local.", dns.TypeSRV},
		{"10.0.96.10.in-addr.arpa.", dns.TypePTR}, {"example.com.", dns.TypeA}, {"cluster.local.", dns.TypeSOA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		b, _ := m.Pack()
		f.Add(b)
	}
	ts := dnsFixture(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if req.Unpack(b) != nil {
			return
		}
		for _, tcp := range []bool{false, true} {
			if _, err := ts.dnsView.Reply(req, tcp).Pack(); err != nil {
				t.Fatalf("reply does not pack: %v", err)
			}
		}
	})
}

// TestDNSHiddenNamespaces: a namespace --dns-hide-namespace names does not
// exist over DNS (its names are NXDOMAIN, its addresses have no PTR),
// while the others answer as before and Resolve, which carries a token,
// still sees it.
func TestDNSHiddenNamespaces(t *testing.T) {
	ts := startServer(t, Config{Security: Security{DNSHiddenNamespaces: []string{"team-*"}}})
	for _, ns := range []string{"shop", "team-a"} {
		svc := &svcregv1.Service{Name: "web", Namespace: ns, Selector: map[string]string{"app": "web"}, Ports: []*svcregv1.ServicePort{{Port: 443}}}
		ts.mustCreateService(t, svc)
	}
	inst := webInst("web-1")
	inst.Namespace, inst.Ip = "team-a", "10.9.0.1"
	ts.mustCreateInstance(t, inst)
	for _, tt := range []struct {
		name  string
		qtype uint16
		want  int
	}{
		{"web.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess},
		{"web.team-a.svc.cluster.local.", dns.TypeA, dns.RcodeNameError},
		{"team-a.svc.cluster.local.", dns.TypeA, dns.RcodeNameError},
		// As for any address outside the service range the registry does
		// not know: nothing tells a hidden endpoint from no endpoint.
		{"1.0.9.10.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused},
	} {
		if m := query(t, ts.DNSAddr(), "udp", tt.name, tt.qtype); m.Rcode != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.want])
		}
	}
	resp, err := ts.client.Resolve(context.Background(), &svcregv1.ResolveRequest{Name: "web.team-a.svc.cluster.local"})
	if err != nil || resp.GetRcode() != "NOERROR" {
		t.Errorf("Resolve of a hidden namespace's name: %v %v, want NOERROR", resp.GetRcode(), err)
	}
}
