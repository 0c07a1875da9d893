package main

import (
	"context"
	"flag"

	"github.com/svcreg/svcreg/internal/proxy"
)

// proxyCmd is `svcreg proxy`: the node agent that makes cluster IPs and
// node ports real (docs/proxy.md).
func proxyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	conn := addConnFlagsAs(fs, "registry")
	var cfg proxy.Config
	fs.StringVar(&cfg.Mode, "mode", proxy.ModeUserspace, "data plane: userspace (a listener per service port) or nftables (DNAT rules in the kernel)")
	cleanup := fs.Bool("cleanup", false, "remove the nftables table a crashed agent left, and exit")
	fs.StringVar(&cfg.BindAddress, "bind-address", "0.0.0.0", `the node address node ports are served on; "" serves none`)
	fs.StringVar(&cfg.VIPInterface, "vip-interface", "lo", `interface userspace mode puts the cluster IPs on; "-" leaves them to something else`)
	fs.IntVar(&cfg.Limits.Conns, "max-conns", 20_000, "proxied TCP connections open at once (two descriptors each); more wait in the listen backlog")
	fs.IntVar(&cfg.Limits.UDPFlows, "max-udp-flows", 10_000, "UDP clients followed at once per frontend")
	fs.DurationVar(&cfg.Limits.UDPIdle, "udp-idle-timeout", 0, "end a UDP flow idle this long (default 30s)")
	logger := logFlags(fs)
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.Logger, err = logger(); err != nil {
		return err
	}
	if *cleanup {
		return proxy.Cleanup()
	}
	c, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cfg.Registry = c.RegistryServiceClient
	return proxy.Run(ctx, cfg)
}
