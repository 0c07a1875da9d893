// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/reason"
)

// smallLimits makes every limit cheap to reach in a test.
var smallLimits = Limits{
	Object:               ObjectLimits{Labels: 4, LabelBytes: 100, Annotations: 3, AnnotationBytes: 300, Ports: 3, Endpoints: 3},
	SelectorRequirements: 3,
	Watches:              4,
	WatchesPerConn:       2,
	Connections:          8,
	HTTPBodyTimeout:      300 * time.Millisecond,
	SnapshotBytes:        64 << 10,
	DNSUDPSize:           600,
}

func labelsOf(n, valueLen int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = strings.Repeat("v", valueLen)
	}
	return m
}

func portsOf(n int) []*svcregv1.ServicePort {
	var out []*svcregv1.ServicePort
	for i := range n {
		out = append(out, &svcregv1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: int32(80 + i)})
	}
	return out
}

// TestObjectLimits: each object limit takes a write at the limit and
// refuses one past it, naming the field and the limit, with no Raft entry
// for the refused one.
func TestObjectLimits(t *testing.T) {
	ts := startServer(t, Config{Limits: smallLimits})
	tests := []struct {
		name  string
		svc   func(over bool) *svcregv1.Service
		field string
		limit string
	}{
		{"labels", func(over bool) *svcregv1.Service {
			return &svcregv1.Service{Labels: labelsOf(map[bool]int{false: 4, true: 5}[over], 1)}
		}, "service.labels", "at most 4 items"},
		{"label bytes", func(over bool) *svcregv1.Service {
			return &svcregv1.Service{Labels: labelsOf(2, map[bool]int{false: 48, true: 49}[over])} // 2*(2+48)=100
		}, "service.labels", "100 bytes"},
		{"selector pairs", func(over bool) *svcregv1.Service {
			return &svcregv1.Service{Selector: labelsOf(map[bool]int{false: 4, true: 5}[over], 1)}
		}, "service.selector", "at most 4 items"},
		{"annotations", func(over bool) *svcregv1.Service {
			return &svcregv1.Service{Annotations: labelsOf(map[bool]int{false: 3, true: 4}[over], 1)}
		}, "service.annotations", "at most 3 items"},
		{"annotation bytes", func(over bool) *svcregv1.Service {
			return &svcregv1.Service{Annotations: labelsOf(2, map[bool]int{false: 148, true: 149}[over])}
		}, "service.annotations", "300 bytes"},
		{"ports", func(over bool) *svcregv1.Service {
			return &svcregv1.Service{Ports: portsOf(map[bool]int{false: 3, true: 4}[over])}
		}, "service.ports", "at most 3 items"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, over := range []bool{false, true} {
				svc := tt.svc(over)
				svc.Name, svc.Namespace = fmt.Sprintf("s%d-%v", i, over), "limits"
				if len(svc.Ports) == 0 {
					svc.Ports = portsOf(1)
				}
				index := ts.node.Raft().LastIndex()
				_, err := ts.client.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: svc})
				switch {
				case !over && err != nil:
					t.Fatalf("at the limit: %v", err)
				case over && (status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.field) ||
					!strings.Contains(status.Convert(err).Message(), tt.limit)):
					t.Fatalf("past the limit: %v, want INVALID_ARGUMENT naming %s and %q", err, tt.field, tt.limit)
				case over && ts.node.Raft().LastIndex() != index:
					t.Fatalf("a refused write became a Raft entry")
				}
			}
		})
	}
	t.Run("endpoints per replace", func(t *testing.T) {
		ts.mustCreateService(t, &svcregv1.Service{Name: "manual", Namespace: "limits", Ports: portsOf(1)})
		for _, n := range []int{3, 4} {
			var eps []*svcregv1.Endpoint
			for i := range n {
				eps = append(eps, &svcregv1.Endpoint{Instance: fmt.Sprintf("e%d", i), Ip: fmt.Sprintf("10.0.0.%d", i+1)})
			}
			_, err := ts.client.ReplaceEndpoints(context.Background(), &svcregv1.ReplaceEndpointsRequest{Namespace: "limits", Service: "manual", Endpoints: eps})
			if (err == nil) != (n == 3) {
				t.Errorf("%d endpoints: %v", n, err)
			}
		}
	})
	t.Run("selector terms", func(t *testing.T) {
		for _, tt := range []struct {
			sel string
			ok  bool
		}{{"a=1,b=2,c=3", true}, {"a=1,b=2,c=3,d=4", false}, {"a in (x,y,z)", true}, {"a in (w,x,y,z)", false}} {
			_, err := ts.client.ListServices(context.Background(), &svcregv1.ListServicesRequest{Namespace: "limits", LabelSelector: tt.sel})
			if (err == nil) != tt.ok || !tt.ok && !strings.Contains(status.Convert(err).Message(), "more than 3 terms") {
				t.Errorf("selector %q: %v, want ok=%v", tt.sel, err, tt.ok)
			}
		}
	})
}

// TestEchoedValuesAreTruncated: an error repeats at most a bounded part of
// a bad value, and lists a bounded number of fields.
func TestEchoedValuesAreTruncated(t *testing.T) {
	ts := startServer(t, Config{})
	huge := strings.Repeat("x", 200<<10)
	_, err := ts.client.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: huge, Ports: portsOf(1)}})
	if msg := status.Convert(err).Message(); status.Code(err) != codes.InvalidArgument || len(msg) > 1024 {
		t.Fatalf("a 200 KiB name gave a %d-byte error: %.200s", len(msg), msg)
	}
	ports := portsOf(60)
	for _, p := range ports {
		p.Port = 70000 // 60 invalid fields
	}
	_, err = ts.client.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{Name: "x", Ports: ports}})
	st := status.Convert(err)
	violations := 0
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			violations = len(br.GetFieldViolations())
		}
	}
	if !strings.Contains(st.Message(), " more errors") || strings.Count(st.Message(), "; ") != 20 || violations != 20 {
		t.Errorf("60 bad ports: %d field violations and the message %.300s", violations, st.Message())
	}
}

// TestUnknownFieldsAreRefused: a request carrying a field this server does
// not know is refused naming it, and nothing is stored.
func TestUnknownFieldsAreRefused(t *testing.T) {
	ts := startServer(t, Config{})
	inst := webInst("web-1")
	unknown := protowire.AppendTag(nil, 999, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, make([]byte, 1<<10))
	inst.ProtoReflect().SetUnknown(protoreflect.RawFields(unknown))
	_, err := ts.client.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: inst})
	if status.Code(err) != codes.InvalidArgument || reason.Of(err) != reason.FieldInvalid || !strings.Contains(status.Convert(err).Message(), "field number 999") ||
		!strings.Contains(status.Convert(err).Message(), "instance") {
		t.Fatalf("an unknown field: %v, want INVALID_ARGUMENT naming field number 999", err)
	}
	if _, err := ts.store.Read().Instance("shop", "web-1"); err == nil {
		t.Fatal("the instance was stored")
	}
}

// TestWatchLimits: per connection and in all.
func TestWatchLimits(t *testing.T) {
	ts := startServer(t, Config{Limits: smallLimits})
	open := func(conn *grpc.ClientConn) error {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		st, err := svcregv1grpc.NewRegistryServiceClient(conn).WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: "shop", Service: "web"})
		if err != nil {
			return err
		}
		_, err = st.Recv() // SYNCED, or the refusal
		return err
	}
	dial := func() *grpc.ClientConn {
		conn, err := grpc.NewClient(ts.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	a, b, c := dial(), dial(), dial()
	for i, tt := range []struct {
		conn *grpc.ClientConn
		ok   bool
		what string
	}{{a, true, ""}, {a, true, ""}, {a, false, "--max-watches-per-conn"}, {b, true, ""}, {b, true, ""}, {c, false, "--max-watches"}} {
		err := open(tt.conn)
		if tt.ok != (err == nil) || !tt.ok && (status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), tt.what)) {
			t.Errorf("watch %d: %v, want ok=%v (%s)", i, err, tt.ok, tt.what)
		}
	}
}

// TestSlowBodyIsCut: a REST body that does not arrive within the body
// timeout gets its answer and loses its connection, whether the server was
// reading it (408) or refused the request before reading it (415); a
// watch's long response is not cut.
func TestSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Limits: smallLimits})
	for _, tt := range []struct {
		name, header, want string
	}{
		{"read", "Content-Type: application/json\r\n", "408 Request Timeout"},
		{"refused before reading", "", "415 Unsupported Media Type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /v1/namespaces/shop/services HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: 100\r\n\r\n{\"name\":", tt.header)
			// Far longer than the body timeout: only a server that never
			// answers runs into it.
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			b, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("the server neither answered nor closed the connection: %v (read %q)", err, b)
			}
			if !strings.HasPrefix(string(b), "HTTP/1.1 "+tt.want) || !strings.Contains(string(b), "Connection: close") {
				t.Fatalf("answer %q, want %s and Connection: close", b, tt.want)
			}
		})
	}
	resp, err := http.Get("http://" + ts.HTTPAddr() + "/v1/namespaces/shop/services/web/endpoints:watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make([]byte, 4096)
	time.Sleep(2 * smallLimits.HTTPBodyTimeout)
	ts.mustCreateService(t, webSvc())
	if n, err := resp.Body.Read(line); err != nil || !strings.Contains(string(line[:n]), "ADDED") && !strings.Contains(string(line[:n]), "SYNCED") {
		t.Fatalf("the watch after the body timeout: %q %v", line[:n], err)
	}
}

// TestDNSAnswersAreCapped: a question for a large headless service gets at
// most the UDP size limit back over UDP, truncated (TC) so the client
// retries over TCP, where it gets everything.
func TestDNSAnswersAreCapped(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Limits: smallLimits})
	ts.mustCreateService(t, &svcregv1.Service{Name: "db", Namespace: "shop", ClusterIp: "None", Selector: map[string]string{"app": "db"}})
	for i := range 200 {
		ts.mustCreateInstance(t, &svcregv1.Instance{Name: fmt.Sprintf("db-%d", i), Namespace: "shop", Ip: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), Labels: map[string]string{"app": "db"}})
	}
	for _, edns := range []uint16{0, 599, 600, 4096} {
		q := new(dns.Msg)
		q.SetQuestion("db.shop.svc.cluster.local.", dns.TypeA)
		if edns > 0 {
			q.SetEdns0(edns, false)
		}
		size, r := exchangeUDP(t, ts.DNSAddr(), q)
		limit := min(max(int(edns), 512), smallLimits.DNSUDPSize)
		if size > limit || !r.Truncated || len(r.Answer) == 0 {
			t.Errorf("EDNS %d: a %d-byte answer with %d records (TC=%v), want at most %d, truncated", edns, size, len(r.Answer), r.Truncated, limit)
		}
	}
	q := new(dns.Msg)
	q.SetQuestion("db.shop.svc.cluster.local.", dns.TypeA)
	r, _, err := (&dns.Client{Net: "tcp"}).Exchange(q, ts.DNSAddr())
	if err != nil || len(r.Answer) != 200 {
		t.Fatalf("over TCP: %d records, %v", len(r.Answer), err)
	}
}

// exchangeUDP sends q over UDP and returns the answer and its size on
// the wire.
func exchangeUDP(t *testing.T, addr string, q *dns.Msg) (int, *dns.Msg) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, _ := q.Pack()
	conn.Write(b)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	return n, r
}

// TestSnapshotUploadLimits: the first chunk must begin like a snapshot, and
// an upload past the size limit is refused; neither changes anything.
func TestSnapshotUploadLimits(t *testing.T) {
	ts := startServer(t, Config{Limits: smallLimits})
	ts.mustCreateService(t, webSvc())
	rev := ts.store.Revision()
	op := svcregv1grpc.NewOperatorServiceClient(ts.conn)
	upload := func(chunks ...[]byte) error {
		st, err := op.RestoreSnapshot(context.Background())
		if err != nil {
			return err
		}
		for _, c := range chunks {
			if err := st.Send(&svcregv1.RestoreSnapshotRequest{Data: c}); err != nil {
				break // the server answered already
			}
		}
		_, err = st.CloseAndRecv()
		return err
	}
	if err := upload([]byte("not a snapshot at all")); status.Code(err) != codes.InvalidArgument || reason.Of(err) != reason.InvalidSnapshot {
		t.Errorf("a bad first chunk: %v", err)
	}
	big := make([]byte, 32<<10)
	copy(big, "svcreg-store-snapshot v1\n")
	if err := upload(big, make([]byte, 32<<10), make([]byte, 1)); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "--max-snapshot-bytes") {
		t.Errorf("64 KiB + 1 byte: %v", err)
	}
	if ts.store.Revision() != rev {
		t.Errorf("a refused restore changed the state")
	}
}

// openRESTWatches opens n REST watches of a service, each on its own
// connection, and waits until each has its SYNCED line.
func openRESTWatches(tb testing.TB, ts *testServer, n int) {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: -1}
	tb.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	errs := make(chan error, n)
	for range n {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ts.HTTPAddr()+"/v1/namespaces/shop/services/web/endpoints:watch", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				errs <- err
				return
			}
			tb.Cleanup(func() { resp.Body.Close() })
			buf := make([]byte, 1024)
			for {
				k, err := resp.Body.Read(buf)
				if err != nil {
					errs <- err
					return
				}
				if strings.Contains(string(buf[:k]), "SYNCED") {
					errs <- nil
					return
				}
			}
		}()
	}
	for i := range n {
		if err := <-errs; err != nil {
			tb.Fatalf("REST watch %d: %v", i, err)
		}
	}
}

// TestRESTWatchesDoNotBlockRequests: more REST watches than one gRPC
// connection's stream limit (1,024) are open, and REST requests are still
// served: the gateway has no shared choke point.
func TestRESTWatchesDoNotBlockRequests(t *testing.T) {
	t.Parallel()
	// All from one address: past the default share of connections.
	ts := startServer(t, Config{Limits: Limits{ConnectionsPerClient: 2000}})
	ts.mustCreateService(t, webSvc())
	openRESTWatches(t, ts, 1100)
	if n := ts.Watchers(); n < 1100 {
		t.Fatalf("%d watchers, want 1100", n)
	}
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ts.HTTPAddr()+"/v1/namespaces/shop/services/web", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d beside 1,100 REST watches: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
}

// TestRejectedWritesAreNotLogged: a write that fails its checks never
// becomes a Raft entry, whether it reaches the leader or a follower.
func TestRejectedWritesAreNotLogged(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	leader.mustCreateService(t, webSvc())
	c.addressesRecorded(t, leader)
	huge := webInst("huge")
	huge.Labels = labelsOf(100, 10) // over the default 64 labels
	for _, m := range c.members {
		// An election meanwhile (a machine so busy that heartbeats are
		// late) appends the new leader's own entries: measure again.
		for attempt := 1; ; attempt++ {
			leader = c.waitLeader()
			term, index := raftTerm(leader), leader.node.Raft().LastIndex()
			for range 20 {
				for _, bad := range []*svcregv1.Instance{huge, {Name: "no-ip", Namespace: "shop"}, webInst("web-1")} {
					_, err := m.client.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: bad})
					if bad.GetName() == "web-1" {
						continue // the one valid write, then ALREADY_EXISTS
					}
					if status.Code(err) != codes.InvalidArgument {
						t.Fatalf("%s: %v", m.id, err)
					}
				}
			}
			if raftTerm(leader) != term && attempt < 3 {
				continue
			}
			if grown := leader.node.Raft().LastIndex() - index; grown > 1 {
				t.Errorf("through %s: 40 refused writes and one good one grew the log by %d entries", m.id, grown)
			}
			break
		}
	}
}

// TestWatchWithABodyStreams: a watch whose GET carries a body (read to
// its end or not) still streams its events: the body bound's writer
// passes flushes on.
func TestWatchWithABodyStreams(t *testing.T) {
	ts := startServer(t, Config{Limits: smallLimits})
	ts.mustCreateService(t, webSvc())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a bound: a watch that never flushes
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+ts.HTTPAddr()+"/v1/namespaces/shop/services/web/endpoints:watch", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusOK || err != nil || !strings.Contains(line, "ADDED") && !strings.Contains(line, "SYNCED") {
		t.Fatalf("the watch with a body: %d, %q, %v", resp.StatusCode, line, err)
	}
}
