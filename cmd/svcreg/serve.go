package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
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
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the HTTP address")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
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
