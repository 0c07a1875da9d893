// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/svcreg/svcreg/internal/proxy"
)

// proxyCmd is `svcreg proxy`: the node agent that makes cluster IPs and
// node ports real (docs/proxy.md).
// proxyFlags are proxy's flags that are not fields of proxy.Config.
type proxyFlags struct {
	conn    connFlags
	cleanup *bool
	config  *string
	logger  func() (*slog.Logger, error)
}

// proxyFlagSet defines proxy's flags, into cfg and the returned ones.
func proxyFlagSet(cfg *proxy.Config) (*flag.FlagSet, proxyFlags) {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	f := proxyFlags{conn: addConnFlagsAs(fs, "registry")}
	fs.StringVar(&cfg.Mode, "mode", proxy.ModeUserspace, "data plane: userspace (a listener per service port) or nftables (DNAT rules in the kernel)")
	f.cleanup = fs.Bool("cleanup", false, "remove what a killed agent left (its nftables table, the cluster IPs it added), and exit")
	fs.StringVar(&cfg.BindAddress, "bind-address", "0.0.0.0", `the node address node ports are served on; "" serves none`)
	fs.StringVar(&cfg.VIPInterface, "vip-interface", "lo", `interface the cluster IPs are put on (userspace mode binds them; in nftables mode they give the node a route to them); "-" leaves them to something else`)
	fs.IntVar(&cfg.Limits.Conns, "max-conns", 20_000, "proxied TCP connections open at once (up to 6 descriptors each; lowered to fit the descriptor limit); more wait in the listen backlog")
	fs.DurationVar(&cfg.Limits.Idle, "idle-timeout", 15*time.Minute, "end a proxied TCP connection that moved no byte for this long")
	fs.DurationVar(&cfg.Limits.HalfClose, "half-close-timeout", time.Minute, "end a proxied TCP connection one side finished sending on when nothing moves for this long")
	fs.DurationVar(&cfg.ResyncPeriod, "resync-period", 30*time.Second, "how often the agent checks the kernel against what it programmed")
	fs.StringVar(&cfg.NodeName, "node-name", "", "the node this agent runs on (the instances' node): it then probes their readiness and holds the node's lease, so the servers leave them to it")
	fs.StringVar(&cfg.Zone, "zone", "", "the zone this node is in: services with a traffic distribution send this node's connections to endpoints in it first")
	fs.IntVar(&cfg.Limits.UDPFlows, "max-udp-flows", 10_000, "UDP clients followed at once per frontend")
	fs.DurationVar(&cfg.Limits.UDPIdle, "udp-idle-timeout", 0, "end a UDP flow idle this long (default 30s)")
	f.logger = logFlags(fs)
	f.config = configFlag(fs)
	return fs, f
}

func proxyCmd(ctx context.Context, args []string) error {
	var cfg proxy.Config
	fs, f := proxyFlagSet(&cfg)
	if err := parseDaemonFlags(fs, "proxy", args, f.config); err != nil {
		return err
	}
	var err error
	if cfg.Logger, err = f.logger(); err != nil {
		return err
	}
	if *f.cleanup {
		return proxy.Cleanup()
	}
	c, err := f.conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cfg.Registry = c.RegistryServiceClient
	return proxy.Run(ctx, cfg)
}
