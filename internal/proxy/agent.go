// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sys/unix"

	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/servicemodel"
)

// The data plane modes.
const (
	ModeUserspace = "userspace"
	ModeNFTables  = "nftables"
)

// Config configures the agent.
type Config struct {
	// Registry is a client of the registry (the SDK's connection, with its
	// token and TLS).
	Registry svcregv1grpc.RegistryServiceClient
	// Mode is ModeUserspace or ModeNFTables.
	Mode string
	// BindAddress is the node address node ports are served on; empty
	// serves none.
	BindAddress string
	// VIPInterface is where userspace mode puts the cluster IPs; default
	// "lo"; "-" leaves them alone (something else routes them here).
	VIPInterface string
	// Limits bound the userspace data plane.
	Limits Limits
	// ResyncPeriod is how often a full sync checks the kernel against what
	// the agent programmed; default 30s.
	ResyncPeriod time.Duration
	Logger       *slog.Logger
	// OnSync, when set, hears of every data plane update (metrics).
	OnSync func(frontends int, err error)
	// NodeName is the node the agent runs on (the instances' node field).
	// When set, the agent probes the readiness of its node's instances
	// and holds the node's lease (docs/health.md).
	NodeName string
	// NodeLeaseTTL is the node lease's time to live; default
	// DefaultNodeLeaseTTL.
	NodeLeaseTTL time.Duration
	// Zone is the node's zone, for services that prefer close endpoints
	// (with NodeName: docs/health.md, "Topology").
	Zone string

	// observe hears of every update with its plan (tests).
	observe func(map[frontKey]*frontend, error)
	// started is given the data plane before the first sync (tests).
	started func(dataplane)
}

// dataplane is what a mode programs. sync makes it serve exactly the
// planned frontends; full first reads back what the kernel holds (an
// nftables table someone changed, a socket someone closed) instead of
// trusting the agent's memory. A failed sync leaves the memory of what is
// programmed as it was: the next sync, a full one, tries again.
type dataplane interface {
	sync(planned map[frontKey]*frontend, full bool) error
	stop()
}

// Retries after a failed sync back off from retryMin to retryMax (tests
// shorten them), as kube-proxy's BoundedFrequencyRunner retries.
var (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// ErrCannotRun: the mode cannot run on this machine as this user (the
// message names what is missing and the other mode).
var ErrCannotRun = errors.New("the proxy mode cannot run here")

// Run programs the data plane from the registry until ctx ends, then
// removes what it programmed. It fails at once, changing nothing, when
// the mode cannot run here.
//
// Each change of the registry is one sync; a sync that fails is retried
// with backoff as a full one, and every ResyncPeriod a full sync checks
// the kernel against what the agent programmed (kube-proxy's
// needFullSync and periodic sync).
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	var prober *nodeProber
	if cfg.NodeName != "" {
		var err error
		if prober, err = newNodeProber(cfg); err != nil {
			return err
		}
	}
	dp, v, err := newDataplane(cfg)
	if err != nil {
		return err
	}
	defer func() {
		dp.stop()
		if v != nil {
			if err := v.clear(); err != nil {
				cfg.Logger.Warn("removing the cluster IPs this agent added (svcreg proxy --cleanup removes them)", "err", err)
			}
		}
	}()
	if cfg.started != nil {
		cfg.started(dp)
	}
	cat := newCatalog(cfg.Registry, cfg.Logger)
	go cat.run(ctx)
	if prober != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			prober.run(ctx)
		}()
		defer func() { <-done }()
	}
	cfg.Logger.Info("svcreg proxy running", "mode", cfg.Mode, "node", cfg.NodeName, "bind_address", cfg.BindAddress, "vip_interface", cfg.VIPInterface,
		"max_conns", cfg.Limits.Conns, "idle_timeout", cfg.Limits.Idle, "half_close_timeout", cfg.Limits.HalfClose)
	resync := time.NewTicker(cfg.ResyncPeriod)
	defer resync.Stop()
	var retry <-chan time.Time
	backoff := retryMin
	full := true // the first sync reads the kernel: a killed agent may have left state
	for {
		select {
		case <-ctx.Done():
			cfg.Logger.Info("svcreg proxy stopping: removing what it programmed")
			return nil
		case <-cat.changed:
		case <-retry:
			full = true
		case <-resync.C:
			full = true
		}
		fronts, err := syncOnce(cfg, cat.snapshot(), dp, v, full)
		if err != nil {
			cfg.Logger.Error("programming the data plane failed; retrying", "err", err, "retry_in", backoff, "full", full)
			retry = time.After(backoff)
			backoff = min(2*backoff, retryMax)
		} else {
			retry, backoff, full = nil, retryMin, false
		}
		if cfg.OnSync != nil {
			cfg.OnSync(len(fronts), err)
		}
		if cfg.observe != nil {
			cfg.observe(fronts, err)
		}
	}
}

func (cfg *Config) setDefaults() {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.VIPInterface == "" {
		cfg.VIPInterface = "lo"
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = 30 * time.Second
	}
	cfg.Limits.setDefaults()
	cfg.Limits.Conns = fitDescriptors(cfg.Limits.Conns, cfg.Logger)
}

// syncOnce plans the frontends from the catalog's snapshot and programs
// the node's cluster IPs and the data plane to match.
func syncOnce(cfg Config, snap map[string]endpointwatch.View, dp dataplane, v *vips, full bool) (map[frontKey]*frontend, error) {
	fronts, problems := plan(snap, cfg.BindAddress, servicemodel.Locality{Zone: cfg.Zone, Node: cfg.NodeName})
	for _, p := range problems {
		cfg.Logger.Warn("not proxied", "err", p)
	}
	var errs []error
	if v != nil {
		errs = append(errs, v.ensure(clusterIPs(fronts), full))
	}
	errs = append(errs, dp.sync(fronts, full))
	return fronts, errors.Join(errs...)
}

// clusterIPs are the addresses the planned frontends need on the node
// (node ports are served on the node's own addresses).
func clusterIPs(planned map[frontKey]*frontend) map[string]bool {
	want := map[string]bool{}
	for k, f := range planned {
		if !f.nodePort {
			host, _, _ := net.SplitHostPort(k.addr)
			want[host] = true
		}
	}
	return want
}

func newDataplane(cfg Config) (dataplane, *vips, error) {
	var v *vips
	switch cfg.Mode {
	case ModeUserspace, ModeNFTables:
	default:
		return nil, nil, fmt.Errorf("--mode %q: want %s or %s", cfg.Mode, ModeUserspace, ModeNFTables)
	}
	if cfg.Mode == ModeNFTables {
		if err := needNetAdmin("nftables mode programs the kernel's NAT", "--mode userspace"); err != nil {
			return nil, nil, err
		}
	}
	if cfg.VIPInterface != "-" {
		if err := needNetAdmin("the agent puts the cluster IPs on "+cfg.VIPInterface, "--vip-interface - with --mode userspace"); err != nil {
			return nil, nil, err
		}
		var err error
		if v, err = newVIPs(cfg.VIPInterface); err != nil {
			return nil, nil, err
		}
	}
	if cfg.Mode == ModeUserspace {
		return newUserspace(cfg.Logger, cfg.Limits), v, nil
	}
	dp, err := newNFTables(cfg)
	return dp, v, err
}

// Cleanup removes what a killed agent left: its nftables table and the
// addresses it marked as its own on any interface.
func Cleanup() error {
	return errors.Join(cleanupNFTables(), removeOwnedAddrs())
}

// needNetAdmin fails, naming the capability and what else to run, unless
// this process has CAP_NET_ADMIN.
func needNetAdmin(why, instead string) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("%w: reading this process's capabilities: %v", ErrCannotRun, err)
	}
	if data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) == 0 {
		return fmt.Errorf("%w: %s, which needs CAP_NET_ADMIN, and this process does not have it: run as root, or grant it "+
			"(setcap cap_net_admin+ep $(which svcreg)), or run %s", ErrCannotRun, why, instead)
	}
	return nil
}
