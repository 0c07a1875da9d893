// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// scrape reads the server's /metrics as Prometheus would.
func scrape(t *testing.T, ts *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(ts.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

// total sums a family's values whose labels include want.
func total(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	sum := 0.0
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		}
	}
	return sum
}

// TestMetrics: after traffic of every kind, /metrics parses and each
// family exists and moved.
func TestMetrics(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	before := scrape(t, ts)
	ts.mustCreateService(t, &svcregv1.Service{Name: "web", Namespace: "shop", Selector: map[string]string{"app": "web"}, Ports: []*svcregv1.ServicePort{{Port: 80}}})
	ts.mustCreateInstance(t, &svcregv1.Instance{Name: "web-1", Namespace: "shop", Ip: "10.0.0.1", TtlSeconds: 60, Labels: map[string]string{"app": "web"}})
	if _, err := ts.client.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: "shop", Name: "web-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.client.GetService(ctx, &svcregv1.GetServiceRequest{Namespace: "shop", Name: "missing"}); err == nil {
		t.Fatal("a missing service was found")
	}
	if code, _ := ts.do(t, "GET", "/v1/namespaces/shop/services", ""); code != http.StatusOK {
		t.Fatalf("REST list: %d", code)
	}
	wctx, cancel := context.WithCancel(ctx)
	stream, err := ts.client.Watch(wctx, &svcregv1.WatchRequest{Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	for { // the snapshot, then SYNCED
		ev, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetType() == svcregv1.EventType_EVENT_TYPE_SYNCED {
			break
		}
	}
	ts.mustCreateInstance(t, &svcregv1.Instance{Name: "web-2", Namespace: "shop", Ip: "10.0.0.2", Labels: map[string]string{"app": "web"}})
	if _, err := stream.Recv(); err != nil { // the fanned-out event
		t.Fatal(err)
	}
	m := new(dns.Msg).SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	if _, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(m, ts.DNSAddr()); err != nil {
		t.Fatal(err)
	}
	during := scrape(t, ts)
	cancel()

	moved := []struct {
		family string
		labels map[string]string
	}{
		{"grpc_server_handled_total", map[string]string{"grpc_method": "CreateService", "grpc_code": "OK"}},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "GetService", "grpc_code": "NotFound"}},
		{"grpc_server_handling_seconds", map[string]string{"grpc_method": "CreateInstance"}},
		{"grpc_server_started_total", map[string]string{"grpc_method": "Watch", "grpc_type": "server_stream"}},
		{"svcreg_http_requests_total", map[string]string{"route": "/v1/namespaces/{namespace=*}/services", "code": "200", "method": "GET"}},
		{"svcreg_http_request_duration_seconds", map[string]string{"route": "/v1/namespaces/{namespace=*}/services"}},
		{"svcreg_dns_queries_total", map[string]string{"type": "A", "rcode": "NOERROR"}},
		{"svcreg_watch_events_fanned_out_total", nil},
		{"svcreg_lease_renewals_total", nil},
		{"svcreg_revision", nil},
		{"svcreg_raft_last_index", nil},
		{"svcreg_raft_applied_index", nil},
		{"svcreg_raft_commitTime", nil},
		{"svcreg_raft_fsm_applyBatch", nil},
	}
	for _, m := range moved {
		if b, a := total(before, m.family, m.labels), total(during, m.family, m.labels); a <= b {
			t.Errorf("%s%v did not move: %v -> %v", m.family, m.labels, b, a)
		}
	}
	for _, family := range []string{"svcreg_watch_streams", "svcreg_watch_queue_depth", "svcreg_watch_queue_depth_max", "svcreg_watchers_cut_total",
		"svcreg_leases", "svcreg_lease_expirations_total", "svcreg_raft_is_leader", "svcreg_raft_leader_changes_total", "svcreg_build_info",
		"go_goroutines", "process_resident_memory_bytes"} {
		if during[family] == nil {
			t.Errorf("no %s family", family)
		}
	}
	if got := total(during, "svcreg_watch_streams", nil); got < 1 {
		t.Errorf("svcreg_watch_streams = %v with a watch open", got)
	}
	if got := total(during, "svcreg_raft_is_leader", nil); got != 1 {
		t.Errorf("svcreg_raft_is_leader = %v on a server alone", got)
	}
}

// TestDashboardFamilies: every family the Grafana dashboard in docs/
// queries is one a server exports (a rename breaks the test, not the
// dashboard).
func TestDashboardFamilies(t *testing.T) {
	ts := startServer(t, Config{})
	ts.mustCreateService(t, &svcregv1.Service{Name: "web", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Port: 80}}})
	// Labelled families appear once something is counted in them.
	ts.do(t, "GET", "/v1/namespaces/shop/services", "")
	if _, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(new(dns.Msg).SetQuestion("web.shop.svc.cluster.local.", dns.TypeA), ts.DNSAddr()); err != nil {
		t.Fatal(err)
	}
	families := scrape(t, ts)
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`\b(svcreg|grpc|go|process)_[a-zA-Z_]+`)
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, n := range name.FindAllString(target.Expr, -1) {
				if strings.HasPrefix(n, "grpc_") && !strings.HasPrefix(n, "grpc_server_") {
					continue // a label (grpc_method, grpc_code), not a family
				}
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
				if families[base] == nil && families[n] == nil {
					t.Errorf("panel %q queries %s, which no server exports", p.Title, n)
				}
			}
		}
	}
}

// TestMetricsAuth: with --metrics-auth, /metrics answers only a token that
// may read every namespace; without it (the default) it answers anyone.
func TestMetricsAuth(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, Config{Security: Security{MetricsAuth: true}})
	all := as.createToken(t, as.as(as.bearer["bootstrap"]), svcregv1.Role_ROLE_READER, "*")
	for _, tt := range []struct {
		token string
		want  int
	}{
		{"", http.StatusUnauthorized},
		{as.bearer["bad"], http.StatusUnauthorized},
		{as.bearer["reader"], http.StatusForbidden}, // a reader of "own" only
		{all, http.StatusOK},
		{as.bearer["operator"], http.StatusOK}, // an operator reads everything
		{as.bearer["bootstrap"], http.StatusOK},
	} {
		code, _ := as.restAs(t, tt.token, "GET", "/metrics", "")
		if code != tt.want {
			t.Errorf("/metrics with %q: %d, want %d", tt.token, code, tt.want)
		}
	}
	plain := startServer(t, Config{})
	if resp, err := http.Get(plain.base + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics without --metrics-auth: %v, %v", resp, err)
	}
}

// TestZonesWithoutPreferenceMetric: a zone whose endpoints are all not
// ready is counted for a service that prefers its zone, and not for one
// that prefers nothing.
func TestZonesWithoutPreferenceMetric(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	svc := webSvc()
	svc.TrafficDistribution = svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_ZONE
	ts.mustCreateService(t, svc)
	plain := webSvc()
	plain.Name = "plain"
	ts.mustCreateService(t, plain)
	for _, inst := range []*svcregv1.Instance{
		{Name: "a", Namespace: "shop", Ip: "127.0.0.1", Zone: "z-a", Labels: map[string]string{"app": "web"}, Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: 1}}},
		{Name: "b", Namespace: "shop", Ip: "127.0.0.2", Zone: "z-b", Ready: proto.Bool(false), Labels: map[string]string{"app": "web"}, Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: 1}}},
	} {
		if _, err := ts.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst}); err != nil {
			t.Fatal(err)
		}
	}
	if got := zonesWithoutPreference(ts.store.Read()); got != 1 {
		t.Errorf("zones without preference = %d, want 1 (z-b of web)", got)
	}
}
