// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	gometrics "github.com/armon/go-metrics"
	gometricsprom "github.com/armon/go-metrics/prometheus"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/hashicorp/raft"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/gateway"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/servicemodel"
	"github.com/svcreg/svcreg/internal/store"
)

// serverMetrics are one server's Prometheus metrics (docs/metrics.md). The
// gRPC families keep go-grpc-prometheus's names, so its dashboards work.
type serverMetrics struct {
	registry      *prometheus.Registry
	rpcStarted    *prometheus.CounterVec
	rpcHandled    *prometheus.CounterVec
	rpcSeconds    *prometheus.HistogramVec
	httpRequests  *prometheus.CounterVec
	httpSeconds   *prometheus.HistogramVec
	dnsQueries    *prometheus.CounterVec
	leaderChanges prometheus.Counter
}

// latencyBuckets span a loopback read (100 µs) to a slow Raft commit (10 s).
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0001, 10, 16)

func newServerMetrics(s *Server) *serverMetrics {
	m := &serverMetrics{
		registry: prometheus.NewRegistry(),
		rpcStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_started_total",
			Help: "RPCs started on the client port."}, []string{"grpc_type", "grpc_service", "grpc_method"}),
		rpcHandled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_handled_total",
			Help: "RPCs completed on the client port, by status code."}, []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
		rpcSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "grpc_server_handling_seconds",
			Help: "Time to complete an RPC on the client port (streams: their lifetime).", Buckets: latencyBuckets},
			[]string{"grpc_type", "grpc_service", "grpc_method"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "svcreg_http_requests_total",
			Help: "REST requests, by route template and status code."}, []string{"method", "route", "code"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "svcreg_http_request_duration_seconds",
			Help: "Time to answer a REST request (watches: their lifetime).", Buckets: latencyBuckets}, []string{"method", "route"}),
		dnsQueries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "svcreg_dns_queries_total",
			Help: "DNS questions answered, by type and response code."}, []string{"type", "rcode"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "svcreg_raft_leader_changes_total",
			Help: "Times this server became or stopped being the Raft leader."}),
	}
	m.registry.MustRegister(m.rpcStarted, m.rpcHandled, m.rpcSeconds, m.httpRequests, m.httpSeconds, m.dnsQueries, m.leaderChanges,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	m.registerState(s)
	return m
}

// registerState adds the families read from the server's parts when
// scraped: the store, the watch hub, the leases and Raft.
func (m *serverMetrics) registerState(s *Server) {
	gauge := func(name, help string, f func() float64) {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	gauge("svcreg_revision", "The store revision.", func() float64 { return float64(s.store.Revision()) })
	gauge("svcreg_watch_streams", "Open watch streams (gRPC, REST and the xDS feed's).", func() float64 { return float64(s.hub.Subscribers()) })
	gauge("svcreg_watch_queue_depth", "Events queued to watch streams, not yet sent.", func() float64 { t, _ := s.hub.QueueDepths(); return float64(t) })
	gauge("svcreg_watch_queue_depth_max", "The longest watch stream queue.", func() float64 { _, l := s.hub.QueueDepths(); return float64(l) })
	counter("svcreg_watch_events_fanned_out_total", "Events queued to watch streams.", func() float64 { f, _ := s.hub.Stats(); return float64(f) })
	counter("svcreg_watchers_cut_total", "Watch streams cut off for falling behind (they resume by revision).", func() float64 { _, c := s.hub.Stats(); return float64(c) })
	gauge("svcreg_leases", "Live instance leases.", func() float64 { return float64(s.leases.Len()) })
	counter("svcreg_lease_renewals_total", "Lease renewals this server took (as leader).", func() float64 { r, _ := s.leases.Stats(); return float64(r) })
	counter("svcreg_lease_expirations_total", "Instances deleted because their lease lapsed.", func() float64 { _, e := s.leases.Stats(); return float64(e) })
	gauge("svcreg_lease_self_preservation", "1 while lease expiries are held because too many leases lapsed at once.", func() float64 {
		if since, _ := s.leases.Holding(); !since.IsZero() {
			return 1
		}
		return 0
	})
	gauge("svcreg_lease_self_preservation_held", "Lapsed leases held by self-preservation now.", func() float64 { _, h := s.leases.SelfPreservationStats(); return float64(h) })
	counter("svcreg_lease_self_preservation_holds_total", "Times self-preservation began holding lease expiries.", func() float64 { h, _ := s.leases.SelfPreservationStats(); return float64(h) })
	gauge("svcreg_probes", "Instances this server probes (its share of those no node agent probes).", func() float64 { return float64(s.probes.m.Probing()) })
	counter("svcreg_probe_checks_total", "Readiness checks this server ran.", func() float64 { c, _ := s.probes.m.Checks(); return float64(c) })
	counter("svcreg_probe_check_failures_total", "Readiness checks this server ran that failed.", func() float64 { _, f := s.probes.m.Checks(); return float64(f) })
	gauge("svcreg_topology_zones_without_preference", "Zones, over the services with a traffic distribution, whose clients cannot stay in their zone (describe service says why).",
		func() float64 { return float64(zonesWithoutPreference(s.store.Read())) })
	gauge("svcreg_raft_last_index", "The last Raft log index of this server.", func() float64 { return float64(s.node.Raft().LastIndex()) })
	gauge("svcreg_raft_applied_index", "The last Raft log index applied to this server's store.", func() float64 { return float64(s.node.Raft().AppliedIndex()) })
	gauge("svcreg_raft_is_leader", "1 while this server is the Raft leader.", func() float64 {
		if s.node.Raft().State() == raft.Leader {
			return 1
		}
		return 0
	})
}

// buildInfo is svcreg_build_info: the version, commit and Go toolchain.
func buildInfo() prometheus.Collector {
	version, commit, goVersion := "(devel)", "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "svcreg_build_info", Help: "Always 1: the build's version, commit and Go toolchain.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "go_version": goVersion}})
	g.Set(1)
	return g
}

// Raft and autopilot report through go-metrics' process-wide sink: one
// Prometheus registry for the process, which every server's /metrics
// adds to its own (svcreg_raft_commitTime, svcreg_raft_fsm_apply, ...).
var (
	raftMetricsOnce sync.Once
	raftMetrics     = prometheus.NewRegistry()
)

func startRaftMetrics() {
	raftMetricsOnce.Do(func() {
		sink, err := gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{Registerer: raftMetrics, Name: "svcreg_raft_sink"})
		if err != nil {
			return // a second sink in the process: the first reports
		}
		cfg := gometrics.DefaultConfig("svcreg")
		cfg.EnableHostname, cfg.EnableRuntimeMetrics, cfg.EnableServiceLabel = false, false, false
		gometrics.NewGlobal(cfg, sink)
	})
}

func (m *serverMetrics) handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{m.registry, raftMetrics}, promhttp.HandlerOpts{})
}

// readersOfAll lets through a request whose bearer token may read every
// namespace (a reader bound to "*"): what --metrics-auth asks of /metrics,
// which names namespaces, services and methods.
func (g *guard) readersOfAll(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.authenticateHTTP(r)
		if err == nil {
			_, err = auth.Authorize(p, auth.Read, "*")
		}
		if err != nil {
			st := status.Convert(apierror.ToStatus(err))
			code := runtime.HTTPStatusFromCode(st.Code())
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="svcreg"`)
			}
			gateway.WriteStatus(w, r, code, status.New(st.Code(), st.Message()+" (--metrics-auth: /metrics takes a token that may read every namespace)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticateHTTP authenticates a request of the HTTP port that does not
// go through the gateway (/metrics, the Kubernetes API): its bearer token,
// as the gateway's port takes it.
func (g *guard) authenticateHTTP(r *http.Request) (*auth.Principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", h))
	}
	return g.authenticate(ctx, portGateway)
}

// splitMethod turns /svcreg.v1.RegistryService/ListServices into its
// service and method.
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func (m *serverMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	service, method := splitMethod(info.FullMethod)
	m.rpcStarted.WithLabelValues("unary", service, method).Inc()
	start := time.Now()
	resp, err := handler(ctx, req)
	m.rpcSeconds.WithLabelValues("unary", service, method).Observe(time.Since(start).Seconds())
	m.rpcHandled.WithLabelValues("unary", service, method, status.Code(err).String()).Inc()
	return resp, err
}

func (m *serverMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	service, method := splitMethod(info.FullMethod)
	typ := "bidi_stream"
	switch {
	case info.IsServerStream && !info.IsClientStream:
		typ = "server_stream"
	case info.IsClientStream && !info.IsServerStream:
		typ = "client_stream"
	}
	m.rpcStarted.WithLabelValues(typ, service, method).Inc()
	start := time.Now()
	err := handler(srv, ss)
	m.rpcSeconds.WithLabelValues(typ, service, method).Observe(time.Since(start).Seconds())
	m.rpcHandled.WithLabelValues(typ, service, method, status.Code(err).String()).Inc()
	return err
}

// serverOptions put the RPC metrics outermost on the client port.
func (m *serverMetrics) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(m.unary), grpc.ChainStreamInterceptor(m.stream)}
}

// statusRecorder keeps the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// restMiddleware measures each REST request under its route template
// (/v1/namespaces/{namespace=*}/services), never its path: bounded labels.
func (m *serverMetrics) restMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		route := "unknown"
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route = p.String()
		}
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		next(rec, r, params)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		m.httpSeconds.WithLabelValues(r.Method, route).Observe(time.Since(start).Seconds())
		m.httpRequests.WithLabelValues(r.Method, route, strconv.Itoa(rec.code)).Inc()
	}
}

// dnsTypes are the question types counted by name; others count as OTHER,
// so a client cannot grow the label set.
var dnsTypes = map[uint16]bool{dns.TypeA: true, dns.TypeAAAA: true, dns.TypeSRV: true, dns.TypePTR: true, dns.TypeTXT: true,
	dns.TypeCNAME: true, dns.TypeNS: true, dns.TypeSOA: true, dns.TypeANY: true}

// dnsHandler counts each answered question by type and response code.
func (m *serverMetrics) dnsHandler(next dns.Handler) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		qtype := "OTHER"
		if len(r.Question) > 0 && dnsTypes[r.Question[0].Qtype] {
			qtype = dns.TypeToString[r.Question[0].Qtype]
		}
		rw := &dnsRecorder{ResponseWriter: w, count: func(rcode string) { m.dnsQueries.WithLabelValues(qtype, rcode).Inc() }}
		next.ServeDNS(rw, r)
		if !rw.counted {
			rw.count("NONE") // no answer was written
		}
	})
}

// dnsRecorder counts a query when its answer is written, before the
// client can see it.
type dnsRecorder struct {
	dns.ResponseWriter
	count   func(rcode string)
	counted bool
}

func (w *dnsRecorder) WriteMsg(m *dns.Msg) error {
	if !w.counted {
		w.counted = true
		w.count(dns.RcodeToString[m.Rcode])
	}
	return w.ResponseWriter.WriteMsg(m)
}

// Write counts a packed answer (the resolver sends its answers packed):
// the response code is the header's low four bits (RFC 1035 section
// 4.1.1; no answer of ours uses EDNS0's extended codes).
func (w *dnsRecorder) Write(b []byte) (int, error) {
	if !w.counted && len(b) >= 4 {
		w.counted = true
		w.count(dns.RcodeToString[int(b[3]&0x0f)])
	}
	return w.ResponseWriter.Write(b)
}

// zonesWithoutPreference counts, over every service that prefers close
// endpoints, the zones whose clients the topology rule sends elsewhere.
func zonesWithoutPreference(r *store.ReadTxn) int {
	n := 0
	q := store.ListQuery{Namespace: meta.AllNamespaces, Limit: 1000}
	for {
		page, err := r.ListServices(q)
		if err != nil {
			return n
		}
		for _, svc := range page.Items {
			if svc.GetTrafficDistribution() == svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_UNSPECIFIED {
				continue
			}
			if eps, err := r.Endpoints(svc.GetNamespace(), svc.GetName()); err == nil {
				n += len(servicemodel.ZonesWithoutPreference(svc, eps))
			}
		}
		if page.Next == "" {
			return n
		}
		q.After = page.Next
	}
}
