// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/probe"
	"github.com/svcreg/svcreg/internal/store"
)

// The servers probe the instances no node agent probes (docs/health.md):
// each instance with a readiness probe goes to one server, by rendezvous
// hashing of its key over the servers that answer and have caught up, so
// that every server agrees without talking and a server that leaves (or
// stops answering) hands its share on at the next resync. Instances are
// followed from the store's commits; the server set is resynced every
// probeResync.

// probeResync is how often a server asks which servers are alive.
const probeResync = 5 * time.Second

// serverProbes is this server's prober.
type serverProbes struct {
	s *Server
	m *probe.Manager

	mu      sync.Mutex // guards pending and all; the commit hook's
	pending map[string]*svcregv1.Instance
	all     bool          // rescan the store (start, restore)
	wake    chan struct{} // 1-buffered

	probed map[string]*svcregv1.Instance // the run goroutine's: instances with a probe
	agents map[string]bool               // nodes whose agent holds a lease
	alive  []string                      // servers that answered, by ID
}

func newServerProbes(s *Server) *serverProbes {
	p := &serverProbes{s: s, pending: map[string]*svcregv1.Instance{}, all: true, wake: make(chan struct{}, 1),
		probed: map[string]*svcregv1.Instance{}, agents: map[string]bool{}, alive: []string{s.node.ID()}}
	p.m = probe.New(probe.Config{Prober: "server/" + s.node.ID(), Report: p.report, Clock: s.cfg.Clock, Logger: s.log})
	return p
}

// committed is a store commit hook: it notes the instances that changed.
func (p *serverProbes) committed(events []store.Event) {
	changed := false
	p.mu.Lock()
	for i := range events {
		ev := &events[i]
		if ev.Kind != store.KindInstance {
			continue
		}
		inst, _ := ev.After.(*svcregv1.Instance)
		p.pending[meta.Key(ev.Namespace, ev.Name)] = inst
		changed = true
	}
	p.mu.Unlock()
	if changed {
		p.nudge()
	}
}

// restored is a store restore hook: every instance may have changed.
func (p *serverProbes) restored(int64) {
	p.mu.Lock()
	p.all = true
	p.mu.Unlock()
	p.nudge()
}

func (p *serverProbes) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run follows the instances and the servers until ctx ends.
func (p *serverProbes) run(ctx context.Context) {
	defer p.m.Close()
	// The resync is housekeeping on the machine's clock: tests that step
	// the server's clock count its waiters, and this is not one of them.
	resync := clock.Real().NewTicker(probeResync)
	defer resync.Stop()
	p.resyncServers(ctx)
	for {
		p.apply()
		p.m.Sync(p.targets())
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-resync.Chan():
			p.resyncServers(ctx)
		}
	}
}

// apply folds the pending changes (or a rescan) into probed.
func (p *serverProbes) apply() {
	p.mu.Lock()
	pending, all := p.pending, p.all
	p.pending, p.all = map[string]*svcregv1.Instance{}, false
	p.mu.Unlock()
	if all {
		p.probed, p.agents = map[string]*svcregv1.Instance{}, map[string]bool{}
		page, err := p.s.store.Read().ListInstances(store.ListQuery{Namespace: meta.AllNamespaces})
		if err != nil {
			p.s.log.Error("reading the instances to probe", "err", err)
		}
		for _, inst := range page.Items {
			p.note(meta.Key(inst.GetNamespace(), inst.GetName()), inst)
		}
	}
	for k, inst := range pending {
		p.note(k, inst)
	}
}

// note records one instance's state (nil: deleted): a probed instance, or
// a node agent's lease.
func (p *serverProbes) note(key string, inst *svcregv1.Instance) {
	if ns, name := meta.SplitKey(key); ns == meta.NodeLeaseNamespace {
		if inst == nil {
			delete(p.agents, name)
		} else {
			p.agents[name] = true
		}
		return
	}
	if inst.GetReadinessProbe() == nil {
		delete(p.probed, key)
	} else {
		p.probed[key] = inst
	}
}

// resyncServers learns which servers answer and have caught up. A
// server that has not caught up itself probes nothing and asks nobody.
func (p *serverProbes) resyncServers(ctx context.Context) {
	if p.s.node.CheckCaughtUp() != nil {
		p.alive = nil
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	peers, err := p.s.node.Peers(ctx)
	if err != nil {
		return // keep the last set
	}
	var alive []string
	for _, peer := range peers {
		if peer.Info != nil && peer.Info.GetCaughtUp() {
			alive = append(alive, string(peer.Server.ID))
		}
	}
	if !slices.Contains(alive, p.s.node.ID()) {
		alive = nil // not caught up itself: it probes nothing
	}
	slices.Sort(alive)
	p.alive = alive
}

// targets are the probed instances no agent probes that hash to this
// server.
func (p *serverProbes) targets() []probe.Target {
	var out []probe.Target
	self := p.s.node.ID()
	for key, inst := range p.probed {
		if p.agents[inst.GetNode()] || proberOf(key, p.alive) != self {
			continue
		}
		out = append(out, probe.TargetOf(inst))
	}
	return out
}

// proberOf is the server that probes an instance: the highest
// rendezvous hash of its key with each server's ID.
func proberOf(key string, servers []string) string {
	best, bestHash := "", uint64(0)
	for _, id := range servers {
		d := xxhash.New()
		d.WriteString(key)
		d.WriteString("\x00")
		d.WriteString(id)
		if h := d.Sum64(); best == "" || h > bestHash {
			best, bestHash = id, h
		}
	}
	return best
}

// report records a verdict through Raft, as a client's write would go.
func (p *serverProbes) report(ctx context.Context, t probe.Target, ready bool, message string) error {
	cmd := &storev1.Command{Time: timestamppb.New(p.s.cfg.Clock.Now()), Op: &storev1.Command_ReportProbe{ReportProbe: &svcregv1.ReportProbeResultRequest{
		Namespace: t.Namespace, Name: t.Name, Uid: t.UID, Ready: ready, Prober: "server/" + p.s.node.ID(), Message: message}}}
	_, err := p.s.node.Apply(ctx, cmd)
	return err
}
