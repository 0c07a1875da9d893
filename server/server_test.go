// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/reason"
)

type testServer struct {
	*Server
	client svcregv1grpc.RegistryServiceClient
	conn   *grpc.ClientConn
	base   string // http://127.0.0.1:port
}

// startServer runs a registry on loopback ports picked by the kernel.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	ts, _ := runServer(t, cfg)
	return ts
}

// runServer is startServer that can also be stopped before the test ends.
func runServer(t testing.TB, cfg Config) (ts *testServer, stop func()) {
	t.Helper()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.DNSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	if cfg.RaftTransport == nil {
		// A server alone serves once it has caught up (a cluster's members
		// do once it has formed: startCluster waits for that).
		waitCaughtUp(t, srv)
		// The server records its own addresses by a command of its own,
		// once: wait for it, so that the revisions a test compares move
		// by its own requests alone.
		waitFor(t, "the server to record its addresses", 10*time.Second, func() bool {
			_, err := srv.store.Read().Node(srv.node.ID())
			return err == nil
		})
	}
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			conn.Close()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				// Shutdown may take its 10 s grace and then Raft's close on
				// a starved machine; past 30 s something hangs: show it.
				var stacks strings.Builder
				pprof.Lookup("goroutine").WriteTo(&stacks, 1)
				t.Errorf("server did not stop in 30 s; goroutines:\n%s", stacks.String())
			}
		})
	}
	t.Cleanup(stop)
	return &testServer{Server: srv, client: svcregv1grpc.NewRegistryServiceClient(conn), conn: conn, base: "http://" + srv.HTTPAddr()}, stop
}

// waitCaughtUp waits until a server has caught up with its log: before,
// it answers reads, watches and DNS with NOT_READY.
func waitCaughtUp(t testing.TB, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Ready(ctx); err != nil {
		t.Fatalf("the server did not catch up: %v", err)
	}
}

func (ts *testServer) do(t testing.TB, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: response is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// fieldsOf returns the BadRequest field violations of a REST error body.
func fieldsOf(body map[string]any) []string {
	var fields []string
	details, _ := body["details"].([]any)
	for _, d := range details {
		for _, v := range asSlice(d.(map[string]any)["fieldViolations"]) {
			fields = append(fields, v.(map[string]any)["field"].(string))
		}
	}
	return fields
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestRESTStatusCodes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{ServiceCIDR: "10.96.0.0/29"})
	code, _ := ts.do(t, "POST", "/v1/namespaces/shop/services", `{"name":"web","selector":{"app":"web"},"ports":[{"name":"grpc","port":443,"targetPort":"grpc"}]}`)
	if code != http.StatusOK {
		t.Fatalf("create: %d", code)
	}
	bigName := strings.Repeat("a", 300)
	tests := []struct {
		name, method, path, body string
		code                     int
		field                    string // a field violation the body must name
	}{
		{"malformed JSON", "POST", "/v1/namespaces/shop/services", `{"name":"x",`, 400, ""},
		{"unknown enum value: a field error listing the accepted ones", "POST", "/v1/namespaces/shop/services", `{"name":"x","type":"BOGUS","ports":[{"port":80}]}`, 422, "service.type"},
		{"unknown field", "POST", "/v1/namespaces/shop/services", `{"name":"x","bogus":1,"ports":[{"port":80}]}`, 400, ""},
		{"300 character name", "POST", "/v1/namespaces/shop/services", `{"name":"` + bigName + `","ports":[{"port":80}]}`, 422, "service.name"},
		{"port 0", "POST", "/v1/namespaces/shop/services", `{"name":"x","ports":[{"port":0}]}`, 422, "service.ports[0].port"},
		{"port 70000", "POST", "/v1/namespaces/shop/services", `{"name":"x","ports":[{"port":70000}]}`, 422, "service.ports[0].port"},
		{"invalid selector label value", "POST", "/v1/namespaces/shop/services", `{"name":"x","selector":{"app":"bad value"},"ports":[{"port":80}]}`, 422, `service.selector["app"]`},
		{"duplicate port names", "POST", "/v1/namespaces/shop/services", `{"name":"x","ports":[{"name":"a","port":80},{"name":"a","port":81}]}`, 422, "service.ports[1].name"},
		{"cluster ip 10.96.0.300", "POST", "/v1/namespaces/shop/services", `{"name":"x","clusterIp":"10.96.0.300","ports":[{"port":80}]}`, 422, "service.clusterIp"},
		{"cluster ip out of range", "POST", "/v1/namespaces/shop/services", `{"name":"x","clusterIp":"10.97.0.1","ports":[{"port":80}]}`, 422, "service.clusterIp"},
		{"invalid list selector", "GET", "/v1/namespaces/shop/services?labelSelector=app%3Dbad%20value", "", 422, "labelSelector"},
		{"invalid page token", "GET", "/v1/namespaces/shop/services?pageToken=garbage", "", 422, "pageToken"},
		{"negative page size", "GET", "/v1/namespaces/shop/services?pageSize=-1", "", 422, "pageSize"},
		{"existing name", "POST", "/v1/namespaces/shop/services", `{"name":"web","ports":[{"port":80}]}`, 409, ""},
		{"stale etag", "PATCH", "/v1/namespaces/shop/services/web", `{"etag":"999","scheduler":"wlc"}`, 409, ""},
		{"missing service", "GET", "/v1/namespaces/shop/services/nope", "", 404, ""},
		{"missing instance delete", "DELETE", "/v1/namespaces/shop/instances/nope", "", 404, ""},
		{"endpoints of a missing service", "GET", "/v1/namespaces/shop/services/nope/endpoints", "", 404, ""},
		{"bad mask path via unknown scheduler", "PATCH", "/v1/namespaces/shop/services/web", `{"scheduler":"bogus"}`, 422, "service.scheduler"},
		{"hand-written endpoints on a selector service", "PUT", "/v1/namespaces/shop/services/web/endpoints", `{"endpoints":[]}`, 400, ""},
		{"10 MB body", "POST", "/v1/namespaces/shop/services", `{"name":"x","annotations":{"a":"` + strings.Repeat("x", 10<<20) + `"}}`, 413, ""},
	}
	before, _ := ts.store.Read().Service("shop", "web")
	rev := ts.store.Revision()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := ts.do(t, tt.method, tt.path, tt.body)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %v", code, tt.code, body)
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Errorf("no error message: %v", body)
			}
			if tt.field != "" && !contains(fieldsOf(body), tt.field) {
				t.Errorf("field violations %v, want %s", fieldsOf(body), tt.field)
			}
			after, _ := ts.store.Read().Service("shop", "web")
			if ts.store.Revision() != rev || after.GetEtag() != before.GetEtag() {
				t.Errorf("a rejected request changed the state")
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRESTWalkthrough is the README's walkthrough: a service with a
// selector, three instances (one not ready), its endpoints, a PATCH.
func TestRESTWalkthrough(t *testing.T) {
	ts := startServer(t, Config{})
	code, svc := ts.do(t, "POST", "/v1/namespaces/shop/services", `{"name":"web","selector":{"app":"web"},"ports":[{"name":"grpc","port":443,"targetPort":"grpc"}]}`)
	if code != 200 || svc["clusterIp"] == nil || svc["scheduler"] != "rr" {
		t.Fatalf("create service: %d %v", code, svc)
	}
	for i, ready := range []string{"true", "true", "false"} {
		code, inst := ts.do(t, "POST", "/v1/namespaces/shop/instances", fmt.Sprintf(
			`{"name":"web-%d","ip":"127.0.0.%d","labels":{"app":"web"},"ports":[{"name":"grpc","port":8443}],"ready":%s}`, i+1, i+1, ready))
		if code != 200 {
			t.Fatalf("create instance: %d %v", code, inst)
		}
	}
	code, eps := ts.do(t, "GET", "/v1/namespaces/shop/services/web/endpoints", "")
	if code != 200 {
		t.Fatalf("endpoints: %d", code)
	}
	list := asSlice(eps["endpoints"])
	if len(list) != 3 {
		t.Fatalf("want 3 endpoints, got %v", eps)
	}
	readyCount := 0
	for _, e := range list {
		ep := e.(map[string]any)
		if ep["ready"] == true {
			readyCount++
		}
		if ports := asSlice(ep["ports"]); len(ports) != 1 || ports[0].(map[string]any)["port"] != float64(8443) {
			t.Errorf("endpoint ports %v, want the named target 8443", ep["ports"])
		}
	}
	if readyCount != 2 {
		t.Errorf("%d ready endpoints, want 2", readyCount)
	}
	code, inst := ts.do(t, "PATCH", "/v1/namespaces/shop/instances/web-3", `{"ready":true}`)
	if code != 200 || inst["ready"] != true || inst["ip"] != "127.0.0.3" {
		t.Fatalf("patch: %d %v", code, inst)
	}
	code, _ = ts.do(t, "PUT", "/v1/namespaces/shop/instances/web-3", `{"ip":"127.0.0.33","labels":{"app":"web"}}`)
	if code != 200 {
		t.Fatalf("put: %d", code)
	}
	code, inst = ts.do(t, "GET", "/v1/namespaces/shop/instances/web-3", "")
	if code != 200 || inst["ip"] != "127.0.0.33" || inst["ports"] != nil {
		t.Fatalf("PUT replaces the whole instance: %v", inst)
	}
	code, del := ts.do(t, "DELETE", "/v1/namespaces/shop/services/web", "")
	if code != 200 || del["resourceVersion"] == nil {
		t.Fatalf("delete: %d %v", code, del)
	}
	code, _ = ts.do(t, "GET", "/openapi.json", "")
	if code != 200 {
		t.Errorf("openapi: %d", code)
	}
	req, _ := http.NewRequest("GET", ts.base+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestGRPCErrorsCarryDetails(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ctx := context.Background()
	_, err := ts.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: "web", Ports: []*svcregv1.ServicePort{{Port: 80}, {Port: 81}}}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code %v, want InvalidArgument", st.Code())
	}
	var br *errdetails.BadRequest
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			br = d
		case *errdetails.ErrorInfo:
			info = d
		}
	}
	if br == nil || info == nil || info.GetDomain() != reason.Domain {
		t.Fatalf("details %v", st.Details())
	}
	if got := br.GetFieldViolations()[0].GetField(); got != "service.ports[0].name" {
		t.Errorf("field %q", got)
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"get missing", func() error {
			_, err := ts.client.GetService(ctx, &svcregv1.GetServiceRequest{Name: "nope"})
			return err
		}, codes.NotFound},
		{"get without name", func() error {
			_, err := ts.client.GetService(ctx, &svcregv1.GetServiceRequest{})
			return err
		}, codes.InvalidArgument},
		{"update without service", func() error {
			_, err := ts.client.UpdateService(ctx, &svcregv1.UpdateServiceRequest{})
			return err
		}, codes.InvalidArgument},
		{"create without instance", func() error {
			_, err := ts.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{})
			return err
		}, codes.InvalidArgument},
		{"range full", func() error {
			small := startServer(t, Config{ServiceCIDR: "10.96.0.0/30"})
			for i := 0; i < 3; i++ {
				if _, err := small.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
					Name: fmt.Sprintf("s%d", i), Ports: []*svcregv1.ServicePort{{Port: 80}}}}); err != nil {
					return err
				}
			}
			return errors.New("no error")
		}, codes.ResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call()); got != tt.code {
				t.Errorf("code %v, want %v", got, tt.code)
			}
		})
	}
	h, err := healthpb.NewHealthClient(ts.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", h, err)
	}
}

func TestListPagination(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	for _, ns := range []string{"a", "b"} {
		for i := 0; i < 5; i++ {
			_, err := ts.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
				Namespace: ns, Name: fmt.Sprintf("i%d", i), Ip: "10.0.0.1",
				Labels: map[string]string{"parity": []string{"even", "odd"}[i%2]}}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		namespace, selector string
		pageSize            int32
		want                []string
	}{
		{"a", "", 2, []string{"a/i0", "a/i1", "a/i2", "a/i3", "a/i4"}},
		{"-", "parity=odd", 1, []string{"a/i1", "a/i3", "b/i1", "b/i3"}},
		{"-", "parity in (even),parity!=odd", 3, []string{"a/i0", "a/i2", "a/i4", "b/i0", "b/i2", "b/i4"}},
		{"b", "!parity", 0, nil},
		{"c", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.namespace+"?"+tt.selector, func(t *testing.T) {
			var got []string
			token := ""
			for pages := 0; ; pages++ {
				resp, err := ts.client.ListInstances(ctx, &svcregv1.ListInstancesRequest{
					Namespace: tt.namespace, LabelSelector: tt.selector, PageSize: tt.pageSize, PageToken: token})
				if err != nil {
					t.Fatal(err)
				}
				if tt.pageSize > 0 && len(resp.GetInstances()) > int(tt.pageSize) {
					t.Fatalf("page of %d, want at most %d", len(resp.GetInstances()), tt.pageSize)
				}
				for _, i := range resp.GetInstances() {
					got = append(got, i.GetNamespace()+"/"+i.GetName())
				}
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
				if pages > 20 {
					t.Fatal("pagination does not end")
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// A token is bound to its query.
	resp, _ := ts.client.ListInstances(ctx, &svcregv1.ListInstancesRequest{Namespace: "a", PageSize: 1})
	_, err := ts.client.ListInstances(ctx, &svcregv1.ListInstancesRequest{Namespace: "b", PageSize: 1, PageToken: resp.GetNextPageToken()})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("token reused with another namespace: %v", err)
	}
}

// TestRESTIfMatch: GET sends the object's ETag; a write whose If-Match
// names another etag is 412 and changes nothing; the current one (or *)
// writes.
func TestRESTIfMatch(t *testing.T) {
	ts := startServer(t, Config{})
	if code, body := ts.do(t, "POST", "/v1/namespaces/shop/services", `{"name":"web","ports":[{"port":80}]}`); code != http.StatusOK {
		t.Fatalf("create: %d %v", code, body)
	}
	resp, err := http.Get(ts.base + "/v1/namespaces/shop/services/web")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	current := resp.Header.Get("ETag")
	svc, _ := ts.store.Read().Service("shop", "web")
	if current != `"`+svc.GetEtag()+`"` {
		t.Fatalf("ETag %q, want %q", current, svc.GetEtag())
	}
	write := func(method, path, body, ifMatch string) int {
		t.Helper()
		req, _ := http.NewRequest(method, ts.base+path, strings.NewReader(body))
		req.Header.Set("If-Match", ifMatch)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name, method, body, ifMatch string
		code                        int
	}{
		{"PUT with a stale etag", "PUT", `{"ports":[{"port":81}]}`, `"1"`, http.StatusPreconditionFailed},
		{"PATCH with a stale etag", "PATCH", `{"scheduler":"wlc"}`, `"1"`, http.StatusPreconditionFailed},
		{"DELETE with a stale etag", "DELETE", "", `"1"`, http.StatusPreconditionFailed},
		{"a weak tag never matches", "PATCH", `{"scheduler":"wlc"}`, `W/` + current, http.StatusPreconditionFailed},
		{"several tags", "PATCH", `{"scheduler":"wlc"}`, current + `, "7"`, http.StatusBadRequest},
		{"body and header disagree", "PATCH", `{"scheduler":"wlc","etag":"1"}`, current, http.StatusBadRequest},
	}
	rev := ts.store.Revision()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := write(tt.method, "/v1/namespaces/shop/services/web", tt.body, tt.ifMatch); code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			if ts.store.Revision() != rev {
				t.Fatal("a refused write changed the state")
			}
		})
	}
	if code := write("PATCH", "/v1/namespaces/shop/services/web", `{"scheduler":"wlc"}`, current); code != http.StatusOK {
		t.Fatalf("PATCH with the current etag: %d", code)
	}
	if code := write("PATCH", "/v1/namespaces/shop/services/web", `{"scheduler":"lc"}`, "*"); code != http.StatusOK {
		t.Fatalf("PATCH with If-Match *: %d", code)
	}
}
