// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/probe"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/reason"
)

// The agent probes the instances of its node, as the kubelet probes its
// pods (docs/health.md): it holds its node's lease (an instance named
// after the node in meta.NodeLeaseNamespace, renewed while the agent
// runs) so that the servers leave those instances to it, follows every
// instance through one Watch, and probes those whose node is its own.
// When the agent stops, its lease lapses and the servers take over.

// DefaultNodeLeaseTTL is the node lease's time to live: the servers take
// an agent's instances over this long after it stops.
const DefaultNodeLeaseTTL = 20 * time.Second

// nodeProber is the agent's prober.
type nodeProber struct {
	reg  svcregv1grpc.RegistryServiceClient
	node string
	ip   string // the lease's address: the node's, when known
	ttl  time.Duration
	log  *slog.Logger
	m    *probe.Manager
}

func newNodeProber(cfg Config) (*nodeProber, error) {
	if msgs := validation.IsDNS1123Subdomain(cfg.NodeName); msgs != nil {
		return nil, fmt.Errorf("--node-name %q: a node's lease is named after it, which %s", cfg.NodeName, msgs[0])
	}
	ip := cfg.BindAddress
	if validation.IsValidEndpointIP(ip) != nil {
		ip = "127.0.0.1" // the lease is looked up by name; its address is informative
	}
	ttl := cfg.NodeLeaseTTL
	if ttl <= 0 {
		ttl = DefaultNodeLeaseTTL
	}
	p := &nodeProber{reg: cfg.Registry, node: cfg.NodeName, ip: ip, ttl: ttl, log: cfg.Logger}
	p.m = probe.New(probe.Config{Prober: "agent/" + cfg.NodeName, Report: p.report, Logger: cfg.Logger, Clock: clock.Get()})
	return p, nil
}

// run holds the lease and probes until ctx ends.
func (p *nodeProber) run(ctx context.Context) {
	defer p.m.Close()
	go p.holdLease(ctx)
	var rev int64
	bo := endpointwatch.NewBackoff()
	for ctx.Err() == nil {
		err := p.follow(ctx, &rev, bo)
		if ctx.Err() != nil {
			return
		}
		if r := reason.Of(err); r == reason.ResourceVersionTooOld || r == reason.ResourceVersionAhead {
			rev = 0
			continue
		}
		p.log.Warn("watching the registry's instances to probe; retrying", "err", err)
		if clock.Sleep(ctx, bo.Next()) != nil {
			return
		}
	}
}

// follow runs one Watch of every instance, probing this node's.
func (p *nodeProber) follow(ctx context.Context, rev *int64, bo *endpointwatch.Backoff) error {
	st, err := p.reg.Watch(ctx, &svcregv1.WatchRequest{Namespace: meta.AllNamespaces, ResourceVersion: *rev,
		Kinds: []svcregv1.ObjectKind{svcregv1.ObjectKind_OBJECT_KIND_INSTANCE}})
	if err != nil {
		return err
	}
	mine := map[string]*svcregv1.Instance{}
	listing := *rev == 0
	for {
		ev, err := st.Recv()
		if err != nil {
			return err
		}
		bo.Reset()
		switch ev.GetType() {
		case svcregv1.EventType_EVENT_TYPE_SYNCED:
			*rev, listing = ev.GetResourceVersion(), false
			p.sync(mine)
			continue
		case svcregv1.EventType_EVENT_TYPE_BOOKMARK:
			*rev = max(*rev, ev.GetResourceVersion())
			continue
		}
		*rev = max(*rev, ev.GetResourceVersion())
		inst := ev.GetInstance()
		key := meta.Key(inst.GetNamespace(), inst.GetName())
		if ev.GetType() == svcregv1.EventType_EVENT_TYPE_DELETED || inst.GetNode() != p.node || inst.GetReadinessProbe() == nil ||
			inst.GetNamespace() == meta.NodeLeaseNamespace {
			delete(mine, key)
		} else {
			mine[key] = inst
		}
		if !listing {
			p.sync(mine)
		}
	}
}

func (p *nodeProber) sync(mine map[string]*svcregv1.Instance) {
	targets := make([]probe.Target, 0, len(mine))
	for _, inst := range mine {
		targets = append(targets, probe.TargetOf(inst))
	}
	p.m.Sync(targets)
}

func (p *nodeProber) report(ctx context.Context, t probe.Target, ready bool, message string) error {
	_, err := p.reg.ReportProbeResult(ctx, &svcregv1.ReportProbeResultRequest{Namespace: t.Namespace, Name: t.Name, Uid: t.UID,
		Ready: ready, Prober: "agent/" + p.node, Message: message})
	return err
}

// holdLease keeps the node's lease: it creates it (or takes over the one
// a previous run left) and renews it every third of its TTL.
func (p *nodeProber) holdLease(ctx context.Context) {
	lease := &svcregv1.Instance{Name: p.node, Namespace: meta.NodeLeaseNamespace, Ip: p.ip, Node: p.node,
		Labels: map[string]string{"svcreg.io/node": p.node}, TtlSeconds: int32(max(p.ttl/time.Second, 1))}
	t := clock.Get().NewTicker(p.ttl / 3)
	defer t.Stop()
	held := false
	for {
		var err error
		if held {
			_, err = p.reg.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: lease.Namespace, Name: lease.Name})
		}
		if !held || reason.Of(err) == reason.NotFound {
			_, err = p.reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: proto.Clone(lease).(*svcregv1.Instance)})
			if reason.Of(err) == reason.AlreadyExists {
				_, err = p.reg.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: lease.Namespace, Name: lease.Name})
			}
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("holding the node's lease; the servers probe this node's instances meanwhile", "node", p.node, "err", err)
		}
		held = err == nil
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}
