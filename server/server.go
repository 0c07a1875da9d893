// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package server is svcreg's embedding API and composition root (etcd's
// embed): Config, New, Serve, Ready and Close. It wires the store, the
// Raft node and the watch hub to the gRPC services, the HTTP port
// (internal/gateway), DNS and the listeners, and runs them until the
// context ends or Close, then stops gracefully. docs/architecture.md
// follows a request through it.
//
// One file per gRPC service part (etcd's v3rpc): registry.go (services,
// instances, endpoints), watch.go, leases.go, discovery.go, operator.go,
// tokens.go, xds.go; routing.go decides where a request runs,
// interceptors.go holds what every RPC passes through, and
// internal/apierror converts errors in one table.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	clusterv1 "github.com/svcreg/svcreg/gen/svcreg/cluster/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/admission"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/internal/gateway"
	"github.com/svcreg/svcreg/internal/kubeapi"
	"github.com/svcreg/svcreg/internal/kubedns"
	"github.com/svcreg/svcreg/internal/lease"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/internal/watch"
	"github.com/svcreg/svcreg/internal/xds"
)

// Server is a running registry.
type Server struct {
	cfg       Config
	plan      *plan // TLS and auth, as decided at start
	log       *slog.Logger
	store     *store.Store
	node      *cluster.Node
	hub       *watch.Hub
	kubeCache *kubeapi.Cache // the Kubernetes API's objects
	leases    *lease.Manager
	probes    *serverProbes
	ready     *readiness
	grpc      *grpc.Server // the client port
	grpcLis   net.Listener
	peer      *grpc.Server // the peer port's gRPC surface (nil alone)
	dnsView   *kubedns.Resolver
	rest      *restGateway
	http      *http.Server
	httpLis   net.Listener
	dns       *dnsServers
	guard     *guard
	xds       *xds.Feed
	metrics   *serverMetrics
	inFlight  *admission.InFlight // each client's requests in flight, gRPC and REST
	xdsCtx    context.Context     // the ADS server's; cancelled at shutdown
	stopXDS   context.CancelFunc

	// life orders Serve and Close: Close before Serve releases what New
	// bound; Close during Serve stops it as its context ending would.
	life struct {
		sync.Mutex
		serving bool
		closed  bool
	}
	closing chan struct{} // closed by Close
	served  chan struct{} // closed when Serve returns
}

// New builds a server and binds its listeners, so that the bound addresses
// (port 0 picks one) are known before Serve. It fails when the data dir
// lost data (saying what), rather than start with less.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if msgs := validation.IsDNS1123Subdomain(strings.Trim(cfg.ClusterDomain, ".")); msgs != nil {
		return nil, fmt.Errorf("cluster domain %q: %s", cfg.ClusterDomain, msgs[0])
	}
	st, err := newStore(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, closing: make(chan struct{}), served: make(chan struct{}),
		hub: watch.NewHub(watch.Config{History: cfg.WatchHistory, QueueSize: cfg.WatchQueue, Logger: cfg.Logger}, st.Revision())}
	if s.plan, err = s.securityPlan(); err != nil {
		s.hub.Close()
		return nil, err
	}
	s.kubeCache = kubeapi.NewCache(st, s.hub, cfg.Logger, cfg.WatchHistory, cfg.ServiceCIDR, cfg.Clock.Now)
	s.guard = &guard{enabled: s.plan.auth, store: st, clock: cfg.Clock, log: cfg.Logger, sessions: newSessions(st, cfg.Clock)}
	st.OnTokenChange(s.guard.known.invalidate)
	ok := false
	defer func() {
		if !ok {
			s.closeListeners()
		}
	}()
	if s.grpcLis, err = s.listen("gRPC", cfg.GRPCAddr); err != nil {
		return nil, err
	}
	startRaftMetrics() // before Raft starts reporting
	if s.node, err = cluster.Open(s.clusterConfig(), st); err != nil {
		return nil, err
	}
	s.ready = newReadiness(s.node)
	s.guard.caughtUp = s.node.CheckCaughtUp
	if err := s.buildServices(); err != nil {
		return nil, err
	}
	if cfg.HTTPAddr != "-" {
		if err := s.listenHTTP(); err != nil {
			return nil, err
		}
	}
	if cfg.DNSAddr != "-" {
		if s.dns, err = listenDNS(cfg.DNSAddr, s.metrics.dnsHandler(s.dnsView)); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

func newStore(cfg Config) (*store.Store, error) {
	ips, err := store.ParseIPRange(cfg.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	ports, err := store.ParsePortRange(cfg.NodePortRange)
	if err != nil {
		return nil, err
	}
	return store.New(store.Config{ServiceIPs: ips, NodePorts: ports, Limits: store.Limits(cfg.Limits.Object)})
}

func (s *Server) clusterConfig() cluster.Config {
	c := s.cfg
	return cluster.Config{
		NodeID: c.NodeID, RaftAddr: c.RaftAddr, DataDir: c.DataDir, BootstrapExpect: c.BootstrapExpect, Join: c.Join,
		Rejoin: c.Rejoin, GRPCAddr: dialAddr(s.grpcLis.Addr()), Secret: c.ClusterSecret, TimeoutScale: c.RaftTimeoutScale,
		MaxStale: c.MaxStale, MinFreeDisk: c.Limits.MinFreeDisk, Limits: store.Limits(c.Limits.Object), Logger: c.Logger,
		Transport: c.RaftTransport, PeerAddr: c.PeerAddr, TLS: s.plan.peerTLS,
		SnapshotThreshold: c.RaftSnapshotThreshold, SnapshotInterval: c.RaftSnapshotInterval, TrailingLogs: c.RaftTrailingLogs,
		SegmentSize: c.RaftSegmentSize,
	}
}

// buildServices wires the services to the client and peer ports.
func (s *Server) buildServices() error {
	cfg := s.cfg
	s.metrics = newServerMetrics(s)
	rt := &router{node: s.node, store: s.store}
	wr := &writer{node: s.node, clock: cfg.Clock}
	ls := &leases{router: rt, writer: wr}
	s.leases = lease.New(cfg.Clock, ls.expire, cfg.Logger)
	s.leases.SetActive(false, 0) // until this server leads
	s.leases.SetPreservation(lease.Preservation{Share: max(cfg.LeaseStormShare, 0), MaxHold: cfg.LeaseStormMaxHold})
	ls.manager = s.leases
	s.store.OnCommit(s.hub.Append)
	s.store.OnRevision(s.hub.Advance)
	s.store.OnCommit(s.leases.Observe)
	s.store.OnRestore(s.restored)
	s.probes = newServerProbes(s)
	s.store.OnCommit(s.probes.committed)
	s.store.OnRestore(s.probes.restored)
	s.dnsView = kubedns.New(s.dnsSource, kubedns.Config{Zone: cfg.ClusterDomain, TTL: uint32(cfg.DNSTTL / time.Second),
		MaxUDPSize: cfg.Limits.DNSUDPSize, Hidden: hiddenNamespaces(cfg.Security.DNSHiddenNamespaces), OnPanic: func(p any) {
			s.log.Error("panic answering a DNS question: answered SERVFAIL, still serving", "panic", fmt.Sprint(p))
		}})
	reg := &registryServer{
		objects:   &objects{router: rt, writer: wr, leases: ls, limits: cfg.Limits},
		watches:   &watches{store: s.store, hub: s.hub, node: s.node, limits: cfg.Limits},
		leases:    ls,
		discovery: &discovery{dns: s.dnsView, source: s.dnsSource},
	}
	spool := cfg.DataDir
	if spool == "" {
		spool = os.TempDir()
	}
	op := &operator{router: rt, node: s.node, store: s.store, spool: spool, limits: cfg.Limits}
	toks := &tokens{router: rt, writer: wr, enabled: s.plan.auth}
	limiter := newWatchLimiter(cfg.Limits)
	s.inFlight = admission.NewInFlight(cfg.Limits.RequestsPerClient, "--max-requests-per-client", s.log)
	client := &interceptors{log: s.log, guard: gate{s.guard, portClient}, watches: limiter, perConn: true, inFlight: s.inFlight}
	var creds []grpc.ServerOption
	if s.plan.tls != nil {
		creds = append(creds, grpc.Creds(credentials.NewTLS(s.plan.tls.ServerConfig("h2"))))
	}
	s.grpc = newGRPCServer(client, append(s.metrics.serverOptions(), creds...)...)
	svcregv1grpc.RegisterRegistryServiceServer(s.grpc, reg)
	svcregv1grpc.RegisterOperatorServiceServer(s.grpc, op)
	svcregv1grpc.RegisterTokenServiceServer(s.grpc, toks)
	healthpb.RegisterHealthServer(s.grpc, s.ready.health)
	reflection.Register(s.grpc) // v1 and v1alpha
	xdsSvc := s.registerXDS(s.grpc)
	if s.node.PeerListener() != nil {
		// The peer port: the servers' own protocol, and the registry's
		// services for what followers pass to the leader.
		s.peer = newGRPCServer(&interceptors{log: s.log, guard: gate{s.guard, portPeer}, watches: newWatchLimiter(cfg.Limits), perConn: true},
			grpc.Creds(cluster.PeerCredentials()))
		clusterv1.RegisterPeerServiceServer(s.peer, s.node.PeerService())
		svcregv1grpc.RegisterRegistryServiceServer(s.peer, reg)
		svcregv1grpc.RegisterOperatorServiceServer(s.peer, op)
	}
	if cfg.HTTPAddr != "-" {
		var err error
		s.rest, err = newRESTGateway(func(g *grpc.Server) {
			svcregv1grpc.RegisterRegistryServiceServer(g, reg)
			svcregv1grpc.RegisterTokenServiceServer(g, toks)
			svcregv1grpc.RegisterXDSServiceServer(g, xdsSvc)
			svcregv1grpc.RegisterOperatorServiceServer(g, op)
		}, &interceptors{log: s.log, guard: gate{s.guard, portGateway}, watches: limiter}, uint32(cfg.Limits.Watches+cfg.Limits.Connections))
		return err
	}
	return nil
}

// hiddenNamespaces is DNS's filter of the namespaces it does not answer
// for.
func hiddenNamespaces(patterns []string) func(string) bool {
	if len(patterns) == 0 {
		return nil
	}
	return func(ns string) bool {
		for _, p := range patterns {
			if auth.Matches(p, ns) {
				return true
			}
		}
		return false
	}
}

// newGRPCServer: extra's interceptors run outside ic's (metrics see the
// final status).
func newGRPCServer(ic *interceptors, extra ...grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(append(extra, ic.serverOptions()...),
		grpc.MaxRecvMsgSize(gateway.MaxRequestBytes),
		grpc.MaxConcurrentStreams(1024),
		// Watches are long and often idle: let clients keep them alive with
		// pings every 10 s or more, and find dead clients ourselves.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.ForceServerCodecV2(newCodec()),
	)...)
}

// dnsSource is what DNS, Resolve and GetEnvironment read: this server's
// store, once it has caught up (before that DNS answers SERVFAIL, never
// NXDOMAIN).
func (s *Server) dnsSource() (kubedns.Snapshot, error) {
	if err := s.node.CheckCaughtUp(); err != nil {
		return nil, err
	}
	return s.store.Read(), nil
}

func (s *Server) listenHTTP() error {
	cfg := gateway.Config{Conn: s.rest.conn, Observe: s.metrics.restMiddleware, Metrics: s.metrics.handler(), Readyz: s.ready.serveReadyz,
		Kubernetes: s.kubernetesAPI(), Pprof: s.cfg.Pprof, BodyTimeout: s.cfg.Limits.HTTPBodyTimeout, Log: s.log, InFlight: s.inFlight, AllowedHosts: s.cfg.Security.HTTPAllowedHosts}
	if s.plan.tls != nil {
		cfg.CertNames = s.plan.tls.Names
	}
	if s.cfg.Security.MetricsAuth {
		cfg.MetricsGuard = s.guard.readersOfAll
	}
	handler, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	if s.httpLis, err = s.listen("HTTP", s.cfg.HTTPAddr); err != nil {
		return err
	}
	if s.plan.tls != nil {
		s.httpLis = tls.NewListener(s.httpLis, s.plan.tls.ServerConfig("http/1.1"))
	}
	s.http = &http.Server{Handler: handler, ConnContext: gateway.ConnContext, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: s.cfg.Limits.HTTPIdleTimeout,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	return nil
}

// closeListeners undoes a New that failed half-way.
func (s *Server) closeListeners() {
	for _, l := range []net.Listener{s.grpcLis, s.httpLis} {
		if l != nil {
			l.Close()
		}
	}
	if s.dns != nil {
		s.dns.close()
	}
	if s.rest != nil {
		s.rest.close()
	}
	if s.node != nil {
		s.node.Close()
	}
	s.hub.Close()
}

// dialAddr turns a bound address into one to dial: a wildcard host becomes
// loopback.
func dialAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	if tcp.IP.To4() != nil {
		return fmt.Sprintf("127.0.0.1:%d", tcp.Port)
	}
	return fmt.Sprintf("[::1]:%d", tcp.Port)
}

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the bound HTTP address, or "" when REST is disabled.
func (s *Server) HTTPAddr() string {
	if s.httpLis == nil {
		return ""
	}
	return s.httpLis.Addr().String()
}

// DNSAddr is the bound DNS address (UDP and TCP), or "" when DNS is off.
func (s *Server) DNSAddr() string {
	if s.dns == nil {
		return ""
	}
	return s.dns.addr
}

// PeerAddr is the bound peer port, or "" for a server alone in memory.
func (s *Server) PeerAddr() string { return s.node.PeerAddr() }

// Ready waits until the server answers reads with the cluster's latest
// state: it has applied the log up to its leader's commit index (a leader:
// everything earlier leaders committed), or ctx ended. /readyz and gRPC
// health answer the same for a remote caller.
func (s *Server) Ready(ctx context.Context) error { return s.node.WaitCaughtUp(ctx) }

// ErrServerClosed: Serve was called after Close.
var ErrServerClosed = errors.New("server: closed")

// Close stops the server. While Serve runs, Close stops it as the end of
// Serve's context would and waits for Serve to return; before Serve, it
// releases the listeners and the data dir New took. It is safe to call
// more than once.
func (s *Server) Close() error {
	s.life.Lock()
	if s.life.closed {
		s.life.Unlock()
		return nil
	}
	s.life.closed = true
	serving := s.life.serving
	close(s.closing)
	s.life.Unlock()
	if serving {
		<-s.served
		return nil
	}
	s.closeListeners()
	return nil
}

// Watchers is the number of watch subscribers.
func (s *Server) Watchers() int { return s.hub.Subscribers() }

// restored runs after a snapshot replaced the store: watches end (clients
// list again) and leases are tracked anew.
func (s *Server) restored(rev int64) {
	s.hub.Reset(rev)
	page, err := s.store.Read().ListInstances(store.ListQuery{Namespace: meta.AllNamespaces})
	if err != nil {
		s.log.Error("reading the restored instances' leases", "err", err)
	}
	s.leases.Reset(page.Items)
	if s.node.IsLeader() {
		s.leases.SetActive(true, s.cfg.LeaseGrace)
	}
}

// Serve runs the server until ctx ends, then stops it gracefully: it stops
// taking new requests and lets in-flight ones finish within ShutdownTimeout.
// It returns an error when a listener fails or the node must stop (its
// log store failed a write): the process should then exit, so that a
// supervisor restarts it.
func (s *Server) Serve(ctx context.Context) error {
	s.life.Lock()
	if closed, serving := s.life.closed, s.life.serving; closed || serving {
		s.life.Unlock()
		if serving {
			return errors.New("server: Serve called twice")
		}
		return ErrServerClosed
	}
	s.life.serving = true
	s.life.Unlock()
	defer close(s.served)
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	changes := s.node.LeadershipChanges()
	if s.node.IsLeader() {
		s.leases.SetActive(true, s.cfg.LeaseGrace)
	}
	bg.Go(func() { s.leases.Run(bgCtx) })
	bg.Go(func() { s.bookmarks(bgCtx) })
	bg.Go(func() { s.kubeCache.Run(bgCtx) })
	bg.Go(func() { s.followLeadership(bgCtx, changes, &bg) })
	bg.Go(func() { s.ready.run(bgCtx) })
	bg.Go(func() { s.guard.sessions.run(bgCtx) })
	bg.Go(func() { s.watchTLS(bgCtx) })
	bg.Go(func() { s.runXDS(bgCtx) })
	bg.Go(func() { s.probes.run(bgCtx) })
	if s.node.IsLeader() {
		bg.Go(func() { s.bootstrapTokens(bgCtx) })
	}
	errc := make(chan error, 8)
	go func() { errc <- s.grpc.Serve(s.grpcLis) }()
	if s.peer != nil {
		go func() { errc <- s.peer.Serve(s.node.PeerListener()) }()
	}
	if s.http != nil {
		go func() {
			if err := s.http.Serve(s.httpLis); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if s.dns != nil {
		s.dns.serve(errc)
	}
	s.logStart()
	var err error
	select {
	case <-ctx.Done():
	case <-s.closing:
	case err = <-errc:
		s.log.Error("server failed", "err", err)
	case err = <-s.node.Failed():
	}
	// A server that says it stops, stops: whatever is stuck (a Raft
	// shutdown waiting on a failed store, a handler that ignores its
	// context), Serve returns within the grace and the process exits.
	stopped := make(chan struct{})
	go func() {
		s.shutdown()
		stopBackground()
		bg.Wait()
		close(stopped)
	}()
	bound := s.cfg.ShutdownTimeout + shutdownSlack
	select {
	case <-stopped:
	case <-time.After(bound):
		s.log.Error("the server did not stop within its shutdown grace: returning anyway, so that the process exits", "grace", bound)
		err = errors.Join(err, fmt.Errorf("%w after %v", ErrStuckShutdown, bound))
	}
	return err
}

// urls are the addresses a person opens or points tools at, as log
// attributes: the web view, REST, metrics, and gRPC and DNS as their
// clients name them.
func (s *Server) urls() []any {
	var out []any
	if addr := s.HTTPAddr(); addr != "" {
		scheme := "http"
		if s.plan.tls != nil {
			scheme = "https"
		}
		out = append(out, "web_view", scheme+"://"+addr+"/ui/", "rest", scheme+"://"+addr+"/v1/", "metrics", scheme+"://"+addr+"/metrics")
	}
	out = append(out, "grpc_target", "svcreg://"+s.GRPCAddr()+"/")
	if addr := s.DNSAddr(); addr != "" {
		out = append(out, "dns_server", addr)
	}
	return out
}

// shutdownSlack is what Raft's and the stores' closing may take beyond the
// in-flight requests' ShutdownTimeout.
var shutdownSlack = 5 * time.Second

// ErrStuckShutdown: Serve returned before its shutdown finished.
var ErrStuckShutdown = errors.New("the shutdown did not finish")

// testHookShutdown, when set, runs at the start of the shutdown (tests
// make it block, as a stuck dependency would).
var testHookShutdown atomic.Pointer[func()]

func (s *Server) logStart() {
	s.log.Info("svcreg serving", append([]any{"grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "dns", s.DNSAddr(), "peer", s.PeerAddr()},
		append(s.urls(), "node_id", s.node.ID(), "cluster_domain", s.cfg.ClusterDomain, "service_cidr", s.cfg.ServiceCIDR, "node_port_range", s.cfg.NodePortRange,
			"auth", s.plan.auth, "tls", s.plan.tls != nil, "peer_tls", s.plan.peerTLS != nil)...)...)
	for _, n := range s.plan.notes {
		s.log.Info(n)
	}
	for _, w := range s.plan.warnings {
		s.log.Warn(w)
	}
}

// followLeadership turns lease expiry on while this server leads, and
// makes the bootstrap token when a leader finds none.
func (s *Server) followLeadership(ctx context.Context, changes <-chan bool, bg *sync.WaitGroup) {
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-changes:
			s.metrics.leaderChanges.Inc()
			s.leases.SetActive(leader, s.cfg.LeaseGrace)
			if leader {
				bg.Go(func() { s.bootstrapTokens(ctx) })
			}
		}
	}
}

func (s *Server) shutdown() {
	s.log.Info("svcreg stopping", "timeout", s.cfg.ShutdownTimeout)
	if hook := testHookShutdown.Load(); hook != nil {
		(*hook)()
	}
	s.ready.shutdown() // health checks now answer NOT_SERVING
	s.hub.Close()      // watches end now (UNAVAILABLE); clients resume elsewhere
	s.stopXDS()        // and xDS streams: clients reconnect to another server
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if s.dns != nil {
		s.dns.shutdown(ctx)
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			s.http.Close()
		}
	}
	s.stopGRPC(ctx, s.grpc)
	if s.rest != nil {
		s.rest.close()
	}
	if s.peer != nil {
		s.stopGRPC(ctx, s.peer)
	}
	if err := s.node.Close(); err != nil {
		s.log.Warn("raft shutdown", "err", err)
	}
	s.log.Info("svcreg stopped")
}

// stopGRPC stops a gRPC server gracefully, or at once when ctx ends first.
func (s *Server) stopGRPC(ctx context.Context, g *grpc.Server) {
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.log.Warn("in-flight requests did not finish in time; closing them")
		g.Stop()
		<-stopped
	}
}

// bookmarks asks every watcher for a BOOKMARK each bookmark interval.
func (s *Server) bookmarks(ctx context.Context) {
	t := s.cfg.Clock.NewTicker(s.cfg.BookmarkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			s.hub.Bookmark()
		}
	}
}
