package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/svcreg/svcreg/server"
)

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg server.Config
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address (port 0 picks one)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", server.DefaultHTTPAddr, `REST listen address; "-" disables REST`)
	fs.StringVar(&cfg.ServiceCIDR, "service-cidr", server.DefaultServiceCIDR, "range cluster IPs are allocated from")
	fs.StringVar(&cfg.NodePortRange, "node-port-range", server.DefaultNodePortRange, "range node ports are allocated from")
	fs.DurationVar(&cfg.BookmarkInterval, "bookmark-interval", 30*time.Second, "how often idle watches get a BOOKMARK event")
	fs.IntVar(&cfg.WatchHistory, "watch-history", 10000, "events kept for resuming watches by revision")
	fs.StringVar(&cfg.DNSAddr, "dns-addr", server.DefaultDNSAddr, "DNS listen address, UDP and TCP; empty disables DNS")
	fs.StringVar(&cfg.ClusterDomain, "cluster-domain", server.DefaultClusterDomain, "the DNS zone answered")
	fs.DurationVar(&cfg.DNSTTL, "dns-ttl", server.DefaultDNSTTL, "time to live of DNS records")
	fs.StringVar(&cfg.NodeID, "node-id", "", "this server's Raft ID (default the host name)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "", "Raft listen address (empty: run alone, in memory)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log and snapshots (empty: keep nothing on disk)")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 1, "number of servers that form the cluster")
	join := fs.String("join", "", "other servers' gRPC addresses, comma-separated, to form or join a cluster")
	fs.Float64Var(&cfg.RaftTimeoutScale, "raft-timeout-scale", 0, "multiply Raft's timings (default 1; 0.05 for a server alone)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the HTTP address")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, a := range strings.Split(*join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Join = append(cfg.Join, a)
		}
	}
	if cfg.BootstrapExpect > 1 && cfg.RaftAddr == "" {
		return fmt.Errorf("--bootstrap-expect %d needs --raft-addr", cfg.BootstrapExpect)
	}
	if cfg.DNSAddr == "" {
		cfg.DNSAddr = "-" // disabled
	}
	if cfg.DNSTTL < time.Second {
		return fmt.Errorf("--dns-ttl %v: want at least 1s", cfg.DNSTTL)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}
