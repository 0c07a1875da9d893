// Package server is svcreg's composition root: it wires the store to the
// gRPC services, the REST gateway and the listeners, and runs them until
// the context ends, then stops gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/jonboulle/clockwork"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/internal/kubedns"
	"github.com/svcreg/svcreg/internal/lease"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/internal/watch"
)

// Config configures a registry server. The zero value of each field means
// its default.
type Config struct {
	GRPCAddr      string // default 127.0.0.1:7400
	HTTPAddr      string // default 127.0.0.1:7480; "-" disables REST
	ServiceCIDR   string // default 10.96.0.0/16
	NodePortRange string // default 30000-32767

	// BookmarkInterval is how often idle watches get a BOOKMARK; default 30s.
	BookmarkInterval time.Duration
	// WatchHistory is how many events are kept for resuming watches;
	// default 10000.
	WatchHistory int
	// WatchQueue is how many events a watcher may fall behind before it is
	// cut off; default 4096.
	WatchQueue int
	// Pprof serves net/http/pprof under /debug/pprof/ on the HTTP port.
	Pprof bool

	// DNSAddr is the DNS listen address, UDP and TCP; default
	// 127.0.0.1:7453; "-" disables DNS.
	DNSAddr string
	// ClusterDomain is the DNS zone; default cluster.local.
	ClusterDomain string
	// DNSTTL is the records' time to live; default 5s.
	DNSTTL time.Duration

	// NodeID is this server's Raft ID; default the host name.
	NodeID string
	// RaftAddr is the Raft listen address; empty runs one server alone
	// over an in-memory transport.
	RaftAddr string
	// DataDir holds the Raft log, stable store and snapshots; empty keeps
	// them in memory.
	DataDir string
	// BootstrapExpect is the number of servers forming the cluster;
	// default 1.
	BootstrapExpect int
	// Join lists other servers' gRPC addresses.
	Join []string
	// RaftTimeoutScale multiplies Raft's timings; default 1 (0.05 for a
	// server alone, which has nobody to wait for).
	RaftTimeoutScale float64
	// LeaseGrace is the minimum time a new leader gives every lease
	// before expiring it; default 5s.
	LeaseGrace time.Duration
	// RaftTransport replaces the Raft transport (tests run clusters in one
	// process over raft.InmemTransport).
	RaftTransport raft.Transport

	Logger          *slog.Logger    // default slog.Default()
	Clock           clockwork.Clock // default the real clock
	ShutdownTimeout time.Duration   // how long in-flight requests may take; default 10s
}

// Defaults of Config, also the CLI flag defaults.
const (
	DefaultGRPCAddr      = "127.0.0.1:7400"
	DefaultHTTPAddr      = "127.0.0.1:7480"
	DefaultServiceCIDR   = "10.96.0.0/16"
	DefaultNodePortRange = "30000-32767"
	DefaultDNSAddr       = "127.0.0.1:7453"
	DefaultClusterDomain = "cluster.local"
	DefaultDNSTTL        = 5 * time.Second
)

func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.GRPCAddr, DefaultGRPCAddr)
	def(&c.HTTPAddr, DefaultHTTPAddr)
	def(&c.ServiceCIDR, DefaultServiceCIDR)
	def(&c.NodePortRange, DefaultNodePortRange)
	def(&c.DNSAddr, DefaultDNSAddr)
	def(&c.ClusterDomain, DefaultClusterDomain)
	if c.DNSTTL == 0 {
		c.DNSTTL = DefaultDNSTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.BookmarkInterval == 0 {
		c.BookmarkInterval = 30 * time.Second
	}
	if c.RaftTimeoutScale == 0 {
		c.RaftTimeoutScale = 1
		if c.RaftAddr == "" {
			c.RaftTimeoutScale = 0.05
		}
	}
	if c.LeaseGrace == 0 {
		c.LeaseGrace = 5 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
}

// Server is a running registry.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	reg     *registry
	grpc    *grpc.Server
	health  *health.Server
	grpcLis net.Listener
	http    *http.Server
	httpLis net.Listener
	gwConn  *grpc.ClientConn
	dns     *dnsServers
	node    *cluster.Node
}

// Node is the server's Raft node.
func (s *Server) Node() *cluster.Node { return s.node }

// restored runs after a snapshot replaced the store: watches end (clients
// list again) and leases are tracked anew.
func (s *Server) restored(rev int64) {
	s.reg.hub.Reset(rev)
	page, _ := s.store.ListInstances(store.ListQuery{Namespace: store.AllNamespaces, Limit: math.MaxInt})
	s.reg.leases.Reset(page.Items)
	if s.node != nil && s.node.IsLeader() {
		s.reg.leases.SetActive(true, s.cfg.LeaseGrace)
	}
}

// followLeadership turns lease expiry on while this server leads.
func (s *Server) followLeadership(ctx context.Context, changes <-chan bool) {
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-changes:
			s.reg.leases.SetActive(leader, s.cfg.LeaseGrace)
		}
	}
}

// New builds a server and binds its listeners, so that the bound addresses
// (port 0 picks one) are known before Serve.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	ips, err := store.ParseIPRange(cfg.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	ports, err := store.ParsePortRange(cfg.NodePortRange)
	if err != nil {
		return nil, err
	}
	st, err := store.New(store.Config{ServiceIPs: ips, NodePorts: ports})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, health: health.NewServer()}
	s.reg = &registry{
		store: st, clock: cfg.Clock,
		hub: watch.NewHub(watch.Config{History: cfg.WatchHistory, QueueSize: cfg.WatchQueue, Logger: cfg.Logger}, st.Revision()),
	}
	s.reg.leases = lease.New(cfg.Clock, s.reg.expireLeases, cfg.Logger)
	s.reg.leases.SetActive(false, 0) // until this server leads
	if msgs := validation.IsDNS1123Subdomain(strings.Trim(cfg.ClusterDomain, ".")); msgs != nil {
		return nil, fmt.Errorf("cluster domain %q: %s", cfg.ClusterDomain, msgs[0])
	}
	s.reg.dns = kubedns.New(st, cfg.ClusterDomain, uint32(cfg.DNSTTL/time.Second))
	st.OnCommit(s.reg.hub.Append)
	st.OnCommit(s.reg.leases.Observe)
	st.OnRestore(s.restored)

	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRequestBytes),
		grpc.MaxConcurrentStreams(1024),
		// Watches are long and often idle: let clients keep them alive with
		// pings every 10 s or more, and find dead clients ourselves.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.ChainUnaryInterceptor(s.logUnary, unaryErrors),
		grpc.ChainStreamInterceptor(streamErrors),
		grpc.ForceServerCodecV2(newCodec()),
	)
	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("gRPC listener: %w", err)
	}
	node, err := cluster.Open(cluster.Config{
		NodeID: cfg.NodeID, RaftAddr: cfg.RaftAddr, DataDir: cfg.DataDir, BootstrapExpect: cfg.BootstrapExpect,
		Join: cfg.Join, GRPCAddr: dialAddr(s.grpcLis.Addr()), TimeoutScale: cfg.RaftTimeoutScale, Logger: cfg.Logger,
		Transport: cfg.RaftTransport,
	}, st)
	if err != nil {
		s.grpcLis.Close()
		return nil, fmt.Errorf("raft: %w", err)
	}
	s.node, s.reg.node, s.reg.apply = node, node, node
	svcregv1.RegisterRegistryServiceServer(s.grpc, s.reg)
	svcregv1.RegisterOperatorServiceServer(s.grpc, &operator{node: node, store: st, expect: max(1, cfg.BootstrapExpect)})
	storev1.RegisterReplicationServiceServer(s.grpc, &replication{node: node})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc) // v1 and v1alpha

	if cfg.HTTPAddr != "-" {
		if err := s.listenHTTP(); err != nil {
			s.grpcLis.Close()
			node.Close()
			return nil, err
		}
	}
	if cfg.DNSAddr != "-" {
		if s.dns, err = listenDNS(cfg.DNSAddr, s.reg.dns); err != nil {
			s.grpcLis.Close()
			node.Close()
			if s.httpLis != nil {
				s.httpLis.Close()
				s.gwConn.Close()
			}
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) listenHTTP() error {
	// The gateway dials our own gRPC port so that REST requests take the
	// same path, interceptors included, as gRPC ones.
	conn, err := grpc.NewClient(dialAddr(s.grpcLis.Addr()),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return err
	}
	handler, err := newGateway(context.Background(), conn, s.metrics, s.cfg.Pprof)
	if err != nil {
		conn.Close()
		return err
	}
	lis, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		conn.Close()
		return fmt.Errorf("HTTP listener: %w", err)
	}
	s.gwConn, s.httpLis = conn, lis
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	return nil
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

// Store is the server's store (for in-process tools such as svcreg bench).
func (s *Server) Store() *store.Store { return s.store }

// Watchers is the number of watch subscribers.
func (s *Server) Watchers() int { return s.reg.hub.Subscribers() }

// Serve runs the server until ctx ends, then stops it gracefully: it stops
// taking new requests and lets in-flight ones finish within ShutdownTimeout.
func (s *Server) Serve(ctx context.Context) error {
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	changes := s.node.LeadershipChanges()
	if s.node.IsLeader() {
		s.reg.leases.SetActive(true, s.cfg.LeaseGrace)
	}
	bg.Go(func() { s.reg.leases.Run(bgCtx) })
	bg.Go(func() { s.bookmarks(bgCtx) })
	bg.Go(func() { s.followLeadership(bgCtx, changes) })
	defer func() {
		stopBackground()
		bg.Wait()
	}()
	errc := make(chan error, 4)
	go func() { errc <- s.grpc.Serve(s.grpcLis) }()
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
	s.log.Info("svcreg serving", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "dns", s.DNSAddr(), "cluster_domain", s.cfg.ClusterDomain,
		"service_cidr", s.cfg.ServiceCIDR, "node_port_range", s.cfg.NodePortRange)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		s.log.Error("server failed", "err", err)
	}
	s.shutdown()
	return err
}

func (s *Server) shutdown() {
	s.log.Info("svcreg stopping", "timeout", s.cfg.ShutdownTimeout)
	s.health.Shutdown() // health checks now answer NOT_SERVING
	s.reg.hub.Close()   // watches end now (UNAVAILABLE); clients resume elsewhere
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
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.log.Warn("in-flight requests did not finish in time; closing them")
		s.grpc.Stop()
		<-stopped
	}
	if s.gwConn != nil {
		s.gwConn.Close()
	}
	if err := s.node.Close(); err != nil {
		s.log.Warn("raft shutdown", "err", err)
	}
	s.log.Info("svcreg stopped")
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
			s.reg.hub.Bookmark()
		}
	}
}

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "rpc", slog.String("method", info.FullMethod),
			slog.Duration("took", time.Since(start)), slog.Any("err", toStatus(err)))
	}
	return resp, err
}
