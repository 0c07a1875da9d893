package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
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
	Registry svcregv1.RegistryServiceClient
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
	Logger *slog.Logger
	// OnSync, when set, hears of every data plane update (metrics).
	OnSync func(frontends int, err error)

	// observe hears of every update with its plan (tests).
	observe func(map[frontKey]*frontend, error)
}

// dataplane is what a mode programs.
type dataplane interface {
	sync(map[frontKey]*frontend) error
	stop()
}

// ErrCannotRun: the mode cannot run on this machine as this user (the
// message names what is missing and the other mode).
var ErrCannotRun = errors.New("the proxy mode cannot run here")

// Run programs the data plane from the registry until ctx ends, then
// removes what it programmed. It fails at once, changing nothing, when
// the mode cannot run here.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.VIPInterface == "" {
		cfg.VIPInterface = "lo"
	}
	dp, err := newDataplane(cfg)
	if err != nil {
		return err
	}
	defer dp.stop()
	cat := newCatalog(cfg.Registry, cfg.Logger)
	go cat.run(ctx)
	cfg.Logger.Info("svcreg proxy running", "mode", cfg.Mode, "bind_address", cfg.BindAddress, "vip_interface", cfg.VIPInterface)
	for {
		select {
		case <-ctx.Done():
			cfg.Logger.Info("svcreg proxy stopping: removing what it programmed")
			return nil
		case <-cat.changed:
		}
		fronts, problems := plan(cat.snapshot(), cfg.BindAddress)
		for _, p := range problems {
			cfg.Logger.Warn("not proxied", "err", p)
		}
		err := dp.sync(fronts)
		if err != nil {
			cfg.Logger.Error("programming the data plane (the rest is in place)", "err", err)
		}
		if cfg.OnSync != nil {
			cfg.OnSync(len(fronts), err)
		}
		if cfg.observe != nil {
			cfg.observe(fronts, err)
		}
	}
}

func newDataplane(cfg Config) (dataplane, error) {
	switch cfg.Mode {
	case ModeUserspace:
		var v *vips
		if cfg.VIPInterface != "-" {
			if err := needNetAdmin("userspace mode puts the cluster IPs on "+cfg.VIPInterface, "--vip-interface -"); err != nil {
				return nil, err
			}
			var err error
			if v, err = newVIPs(cfg.VIPInterface); err != nil {
				return nil, err
			}
		}
		return newUserspace(cfg.Logger, v, cfg.Limits), nil
	case ModeNFTables:
		if err := needNetAdmin("nftables mode programs the kernel's NAT", "--mode userspace"); err != nil {
			return nil, err
		}
		return newNFTables(cfg)
	}
	return nil, fmt.Errorf("--mode %q: want %s or %s", cfg.Mode, ModeUserspace, ModeNFTables)
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
