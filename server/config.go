// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/kubedns"
	"github.com/svcreg/svcreg/internal/lease"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
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
	// RaftAddr is the peer port (Raft and the servers' own gRPC); empty
	// runs one server alone over an in-memory transport.
	RaftAddr string
	// ClusterSecret is the secret every server of the cluster shares; the
	// peer port admits only connections that prove they know it.
	ClusterSecret []byte
	// DataDir holds the Raft log, stable store and snapshots; empty keeps
	// them in memory.
	DataDir string
	// Rejoin discards this server's Raft data at start and copies the
	// cluster's state from its peers (after a damaged data dir).
	Rejoin bool
	// BootstrapExpect is the number of servers forming the cluster;
	// default 1.
	BootstrapExpect int
	// Join lists other servers' peer addresses.
	Join []string
	// RaftTimeoutScale multiplies Raft's timings; default 1 (0.05 for a
	// server alone, which has nobody to wait for).
	RaftTimeoutScale float64
	// LeaseGrace is the minimum time a new leader gives every lease
	// before expiring it; default 5s.
	LeaseGrace time.Duration
	// LeaseStormShare: lease expiries are held (self-preservation,
	// docs/health.md) when more than this share of the leases lapse at
	// once; default 0.5, negative turns it off.
	LeaseStormShare float64
	// LeaseStormMaxHold bounds such a hold; default 15m.
	LeaseStormMaxHold time.Duration
	// MaxStale is how long a follower may go without hearing from the
	// leader before it stops claiming readiness; default ten election
	// timeouts.
	MaxStale time.Duration
	// Raft snapshots: threshold (entries), check interval, trailing logs
	// kept; defaults 16384, 30s, 10240.
	RaftSnapshotThreshold uint64
	RaftSnapshotInterval  time.Duration
	RaftTrailingLogs      uint64
	// RaftSegmentSize is the size of each preallocated log segment;
	// default 64 MiB.
	RaftSegmentSize int
	// RaftTransport replaces the Raft transport (tests run clusters in one
	// process over raft.InmemTransport; the peer gRPC surface then listens
	// on PeerAddr, default 127.0.0.1:0).
	RaftTransport raft.Transport
	PeerAddr      string

	// Limits bound what one request, client or object may take.
	Limits Limits
	// Security is TLS and tokens (docs/security.md).
	Security Security

	Logger          *slog.Logger  // default slog.Default()
	Clock           clock.Clock   // default the real clock
	ShutdownTimeout time.Duration // how long in-flight requests may take; default 10s
}

// Limits bound what one request, one client or one object may take, so
// that none can crash, stall or bloat the registry for the others. Each is
// a flag of `svcreg serve`; zero means the default.
type Limits struct {
	// Object bounds one service or instance (labels, annotations, ports).
	Object ObjectLimits
	// SelectorRequirements is the most requirements one label selector may
	// have; default 64.
	SelectorRequirements int
	// Watches is the most watch streams open at once; default 100,000.
	Watches int
	// WatchesPerConn is the most one gRPC connection may open; default
	// 1,000.
	WatchesPerConn int
	// Connections is the most connections the gRPC and the HTTP listener
	// each hold at once; 64 more are kept for health checks, and past
	// those new connections are closed. Default 10,000.
	Connections int
	// ConnectionsPerClient is the most connections one client address
	// holds on each of those listeners; default 1,000.
	ConnectionsPerClient int
	// RequestsPerClient is the most unary gRPC calls and REST requests one
	// client address has in flight (watches have their own bounds);
	// default 1,000.
	RequestsPerClient int
	// XDSNamesPerRequest bounds the resource names of one xDS request;
	// default 10,000.
	XDSNamesPerRequest int
	// XDSNamesPerStream bounds the names one xDS stream subscribes to, all
	// types together; default 30,000.
	XDSNamesPerStream int
	// HTTPBodyTimeout bounds how long a REST request body may take to
	// arrive (slow-body clients); default 30s.
	HTTPBodyTimeout time.Duration
	// HTTPIdleTimeout closes idle keep-alive connections; default 2m.
	HTTPIdleTimeout time.Duration
	// SnapshotBytes bounds a snapshot upload; default 1 GiB.
	SnapshotBytes int64
	// DNSUDPSize caps the EDNS0 payload of UDP answers; default 1232.
	DNSUDPSize int
	// MinFreeDisk is the free space the data dir must keep, or writes
	// fail with DISK_FULL; default 64 MiB.
	MinFreeDisk int64
}

// ObjectLimits bound one service or instance; the zero value means
// DefaultLimits.Object.
type ObjectLimits struct {
	// Labels is the most labels an object may have, and the most pairs in
	// a service's selector; default 64.
	Labels int
	// LabelBytes bounds the total size of an object's label (or selector)
	// keys and values; default 16 KiB.
	LabelBytes int
	// Annotations is the most annotations a service may have; default 256.
	Annotations int
	// AnnotationBytes bounds their total size; default 256 KiB, Kubernetes'
	// TotalAnnotationSizeLimitB.
	AnnotationBytes int
	// Ports is the most ports a service or an instance may have; default
	// 100 (an EndpointSlice's maximum).
	Ports int
	// Endpoints is the most hand-written endpoints one ReplaceEndpoints may
	// set; default 1000 (an EndpointSlice's maximum).
	Endpoints int
}

// Defaults of Config, also the CLI flag defaults.
const (
	DefaultGRPCAddr      = meta.DefaultRegistryAddr
	DefaultHTTPAddr      = "127.0.0.1:7480"
	DefaultServiceCIDR   = "10.96.0.0/16"
	DefaultNodePortRange = "30000-32767"
	DefaultDNSAddr       = "127.0.0.1:7453"
	DefaultClusterDomain = "cluster.local"
	DefaultDNSTTL        = 5 * time.Second
)

// DefaultLimits are the limits of a Config that sets none.
var DefaultLimits = Limits{
	Object:               ObjectLimits(store.DefaultLimits),
	SelectorRequirements: 64,
	Watches:              100_000,
	WatchesPerConn:       1000,
	Connections:          10_000,
	ConnectionsPerClient: 1000,
	RequestsPerClient:    1000,
	XDSNamesPerRequest:   10_000,
	XDSNamesPerStream:    30_000,
	HTTPBodyTimeout:      30 * time.Second,
	HTTPIdleTimeout:      2 * time.Minute,
	SnapshotBytes:        1 << 30,
	DNSUDPSize:           kubedns.DefaultMaxUDPSize,
	MinFreeDisk:          64 << 20,
}

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
	if c.RaftTransport != nil {
		def(&c.PeerAddr, "127.0.0.1:0")
	}
	if c.DNSTTL == 0 {
		c.DNSTTL = DefaultDNSTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.BookmarkInterval == 0 {
		c.BookmarkInterval = 30 * time.Second
	}
	if c.RaftTimeoutScale == 0 {
		c.RaftTimeoutScale = 1
		if c.RaftAddr == "" && c.RaftTransport == nil {
			c.RaftTimeoutScale = 0.05
		}
	}
	if c.LeaseStormShare == 0 {
		c.LeaseStormShare = lease.DefaultPreservation.Share
	}
	if c.LeaseStormMaxHold == 0 {
		c.LeaseStormMaxHold = lease.DefaultPreservation.MaxHold
	}
	if c.LeaseGrace == 0 {
		c.LeaseGrace = 5 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Security.TLSReloadInterval == 0 {
		c.Security.TLSReloadInterval = 10 * time.Second
	}
	c.Limits.setDefaults()
}

func (l *Limits) setDefaults() {
	d := DefaultLimits
	if l.Object == (ObjectLimits{}) {
		l.Object = d.Object
	}
	for _, f := range []struct{ v, def *int }{
		{&l.SelectorRequirements, &d.SelectorRequirements}, {&l.Watches, &d.Watches},
		{&l.WatchesPerConn, &d.WatchesPerConn}, {&l.Connections, &d.Connections}, {&l.DNSUDPSize, &d.DNSUDPSize},
		{&l.ConnectionsPerClient, &d.ConnectionsPerClient}, {&l.RequestsPerClient, &d.RequestsPerClient},
		{&l.XDSNamesPerRequest, &d.XDSNamesPerRequest}, {&l.XDSNamesPerStream, &d.XDSNamesPerStream},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *time.Duration }{{&l.HTTPBodyTimeout, &d.HTTPBodyTimeout}, {&l.HTTPIdleTimeout, &d.HTTPIdleTimeout}} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if l.SnapshotBytes == 0 {
		l.SnapshotBytes = d.SnapshotBytes
	}
	if l.MinFreeDisk == 0 {
		l.MinFreeDisk = d.MinFreeDisk
	}
}
