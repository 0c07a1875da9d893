// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/svcreg/svcreg/internal/certs"
	"github.com/svcreg/svcreg/server"
)

// serveFlags are serve's flags that are not fields of server.Config.
type serveFlags struct {
	secretFile, join, bootstrapFile, config *string
	logger                                  func() (*slog.Logger, error)
}

// serveFlagSet defines serve's flags, into cfg and the returned ones.
func serveFlagSet(cfg *server.Config) (*flag.FlagSet, serveFlags) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address (port 0 picks one)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", server.DefaultHTTPAddr, `REST listen address; "-" disables REST`)
	fs.StringVar(&cfg.ServiceCIDR, "service-cidr", server.DefaultServiceCIDR, "range cluster IPs are allocated from")
	fs.StringVar(&cfg.NodePortRange, "node-port-range", server.DefaultNodePortRange, "range node ports are allocated from")
	fs.DurationVar(&cfg.BookmarkInterval, "bookmark-interval", 30*time.Second, "how often idle watches get a BOOKMARK event")
	fs.Float64Var(&cfg.LeaseStormShare, "lease-storm-share", 0.5, "self-preservation: hold lease expiries while more than this share of the leases lapsed at once (negative: never hold)")
	fs.DurationVar(&cfg.LeaseStormMaxHold, "lease-storm-max-hold", 15*time.Minute, "self-preservation: expire the lapsed leases anyway after holding them this long")
	fs.IntVar(&cfg.WatchHistory, "watch-history", 10000, "events kept for resuming watches by revision")
	fs.StringVar(&cfg.DNSAddr, "dns-addr", server.DefaultDNSAddr, "DNS listen address, UDP and TCP; empty disables DNS")
	fs.StringVar(&cfg.ClusterDomain, "cluster-domain", server.DefaultClusterDomain, "the DNS zone answered")
	fs.DurationVar(&cfg.DNSTTL, "dns-ttl", server.DefaultDNSTTL, "time to live of DNS records")
	fs.StringVar(&cfg.NodeID, "node-id", "", "this server's Raft ID (default the host name)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "", "the peer port, for Raft and the servers' own RPCs (empty: run alone, in memory)")
	f.secretFile = fs.String("cluster-secret-file", "", "file holding the secret every server of the cluster shares; the peer port admits only servers that know it")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log and snapshots (empty: keep nothing on disk)")
	fs.BoolVar(&cfg.Rejoin, "rejoin", false, "discard this server's Raft data (moved aside) and copy the state from the cluster (--join)")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 1, "number of servers that form the cluster")
	f.join = fs.String("join", "", "other servers' peer addresses (their --raft-addr), comma-separated, to form or join a cluster")
	fs.Float64Var(&cfg.RaftTimeoutScale, "raft-timeout-scale", 0, "multiply Raft's timings (default 1; 0.05 for a server alone)")
	fs.Uint64Var(&cfg.RaftSnapshotThreshold, "raft-snapshot-threshold", 16384, "snapshot the store once the Raft log has this many entries past the last snapshot")
	fs.DurationVar(&cfg.RaftSnapshotInterval, "raft-snapshot-interval", 30*time.Second, "how often to check whether a snapshot is due")
	fs.Uint64Var(&cfg.RaftTrailingLogs, "raft-trailing-logs", 10240, "Raft entries kept behind a snapshot, for followers to catch up from")
	fs.Var(byteSize[int]{&cfg.RaftSegmentSize}, "raft-segment-size", "size of each preallocated Raft log segment (default 64MiB; --min-free-disk should cover one)")
	fs.DurationVar(&cfg.MaxStale, "max-stale", 0, "how long a follower may go without hearing from a leader before it stops claiming readiness (default 10 election timeouts)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the HTTP address")
	limitFlags(fs, &cfg.Limits)
	f.bootstrapFile = securityFlags(fs, &cfg.Security)
	f.logger = logFlags(fs)
	f.config = configFlag(fs)
	return fs, f
}

func serve(ctx context.Context, args []string) error {
	var cfg server.Config
	fs, f := serveFlagSet(&cfg)
	if err := parseDaemonFlags(fs, "serve", args, f.config); err != nil {
		return err
	}
	for _, a := range strings.Split(*f.join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Join = append(cfg.Join, a)
		}
	}
	if err := checkServeFlags(&cfg, fs, *f.secretFile); err != nil {
		return err
	}
	if *f.bootstrapFile != "" {
		tok, err := readBootstrapToken(*f.bootstrapFile)
		if err != nil {
			return err
		}
		cfg.Security.BootstrapToken = tok
	}
	var err error
	if cfg.Logger, err = f.logger(); err != nil {
		return err
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			srv.ReloadTLS() // certificates rotate without a restart
		}
	}()
	return srv.Serve(ctx)
}

// securityFlags are the flags of server.Security; it returns the
// bootstrap token file's flag.
func securityFlags(fs *flag.FlagSet, sec *server.Security) *string {
	fs.StringVar(&sec.TLSCert, "tls-cert", "", "PEM certificate for the gRPC and REST ports (TLS 1.2+; turns auth on); reloaded when it changes or on SIGHUP")
	fs.StringVar(&sec.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&sec.TLSClientCA, "tls-client-ca", "", "PEM CA: require client certificates from it on the gRPC and REST ports (mutual TLS)")
	fs.StringVar(&sec.PeerTLSCA, "peer-tls-ca", "", "PEM cluster CA: the peer port speaks mutual TLS, admitting servers whose certificate it signed and names "+certs.PeerName)
	fs.StringVar(&sec.PeerTLSCert, "peer-tls-cert", "", "PEM certificate for the peer port (default --tls-cert); it must name "+certs.PeerName)
	fs.StringVar(&sec.PeerTLSKey, "peer-tls-key", "", "PEM private key of --peer-tls-cert (default --tls-key)")
	fs.Func("auth", `"on" or "off" (default: on, except for a loopback quick start without a data dir, TLS or bootstrap token)`, func(v string) error {
		switch server.AuthMode(v) {
		case server.AuthOn, server.AuthOff:
			sec.Auth = server.AuthMode(v)
			return nil
		}
		return fmt.Errorf("want on or off")
	})
	fs.BoolVar(&sec.InsecureExpose, "insecure-expose", false, "allow ports that are not loopback without TLS or without auth (warned at every start)")
	fs.BoolVar(&sec.MetricsAuth, "metrics-auth", false, `/metrics takes a token that may read every namespace (a reader bound to "*"); needs auth on`)
	fs.Func("http-allowed-host", `a host name the REST port answers to, beside IP addresses, localhost and the TLS certificate's names (DNS rebinding protection); repeatable`, func(v string) error {
		sec.HTTPAllowedHosts = append(sec.HTTPAllowedHosts, strings.ToLower(strings.TrimSuffix(v, ".")))
		return nil
	})
	fs.Func("dns-hide-namespace", `namespace (or "prefix-*", or "*") DNS does not answer for; repeatable`, func(v string) error {
		sec.DNSHiddenNamespaces = append(sec.DNSHiddenNamespaces, v)
		return nil
	})
	return fs.String("bootstrap-token-file", "", "file whose one line becomes the operator token of a cluster that has none yet")
}

func readBootstrapToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--bootstrap-token-file: %w", err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	if tok = strings.TrimSpace(tok); len(tok) < 16 {
		return "", fmt.Errorf("--bootstrap-token-file %s: the token must be at least 16 characters (try: svcreg token generate > %s)", file, file)
	}
	return tok, nil
}

func checkServeFlags(cfg *server.Config, fs *flag.FlagSet, secretFile string) error {
	switch {
	case cfg.BootstrapExpect > 1 && cfg.RaftAddr == "":
		return fmt.Errorf("--bootstrap-expect %d needs --raft-addr", cfg.BootstrapExpect)
	case len(cfg.Join) > 0 && cfg.RaftAddr == "":
		return fmt.Errorf("--join needs --raft-addr")
	case cfg.Rejoin && (cfg.DataDir == "" || len(cfg.Join) == 0):
		return fmt.Errorf("--rejoin needs --data-dir and --join (the servers to copy the state from)")
	case cfg.DNSTTL < time.Second:
		return fmt.Errorf("--dns-ttl %v: want at least 1s", cfg.DNSTTL)
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.DNSAddr == "" {
		cfg.DNSAddr = "-" // disabled
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return fmt.Errorf("--cluster-secret-file: %w", err)
		}
		if cfg.ClusterSecret = []byte(strings.TrimSpace(string(b))); len(cfg.ClusterSecret) < 16 {
			return fmt.Errorf("--cluster-secret-file %s: the secret must be at least 16 characters (try: head -c 32 /dev/urandom | base64 > %s)", secretFile, secretFile)
		}
	}
	return nil
}

// limitFlags are the flags of server.Limits, with their defaults.
func limitFlags(fs *flag.FlagSet, l *server.Limits) {
	d := server.DefaultLimits
	*l = d
	fs.IntVar(&l.Object.Labels, "max-labels", d.Object.Labels, "labels per object (and pairs per service selector)")
	fs.Var(byteSize[int]{&l.Object.LabelBytes}, "max-label-bytes", "total size of an object's labels (or selector)")
	fs.IntVar(&l.Object.Annotations, "max-annotations", d.Object.Annotations, "annotations per service")
	fs.Var(byteSize[int]{&l.Object.AnnotationBytes}, "max-annotation-bytes", "total size of a service's annotations")
	fs.IntVar(&l.Object.Ports, "max-ports", d.Object.Ports, "ports per service or instance")
	fs.IntVar(&l.Object.Endpoints, "max-endpoints", d.Object.Endpoints, "hand-written endpoints per ReplaceEndpoints")
	fs.IntVar(&l.SelectorRequirements, "max-selector-terms", d.SelectorRequirements, "requirements (and set values) per label selector")
	fs.IntVar(&l.Watches, "max-watches", d.Watches, "watch streams open at once (xDS streams count)")
	fs.IntVar(&l.WatchesPerConn, "max-watches-per-conn", d.WatchesPerConn, "watch streams per gRPC connection (xDS streams count)")
	fs.IntVar(&l.XDSNamesPerRequest, "max-xds-names", d.XDSNamesPerRequest, "resource names in one xDS request")
	fs.IntVar(&l.XDSNamesPerStream, "max-xds-names-per-stream", d.XDSNamesPerStream, "resource names one xDS stream subscribes to, all types together")
	fs.IntVar(&l.Connections, "max-connections", d.Connections, "connections the gRPC and the HTTP port each hold (64 more serve health checks only; past those new ones are closed)")
	fs.IntVar(&l.ConnectionsPerClient, "max-connections-per-client", d.ConnectionsPerClient, "connections one client address holds on the gRPC or the HTTP port")
	fs.IntVar(&l.RequestsPerClient, "max-requests-per-client", d.RequestsPerClient, "unary calls and REST requests one client address has in flight (watches: --max-watches)")
	fs.DurationVar(&l.HTTPBodyTimeout, "http-body-timeout", d.HTTPBodyTimeout, "how long a REST request body may take to arrive")
	fs.DurationVar(&l.HTTPIdleTimeout, "http-idle-timeout", d.HTTPIdleTimeout, "how long an idle keep-alive connection stays open")
	fs.Var(byteSize[int64]{&l.SnapshotBytes}, "max-snapshot-bytes", "largest snapshot a restore accepts")
	fs.IntVar(&l.DNSUDPSize, "dns-max-udp-size", d.DNSUDPSize, "largest EDNS0 UDP answer; larger ones are truncated (TC) for TCP")
	fs.Var(byteSize[int64]{&l.MinFreeDisk}, "min-free-disk", "free space the data dir must keep, or writes fail with DISK_FULL")
}
