// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/ipvs"
)

var logger = grpclog.Component("ipvs")

func init() {
	balancer.Register(builder{})
}

type builder struct{}

func (builder) Name() string { return Name }

// ParseConfig implements balancer.ConfigParser.
func (builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return ParseConfig(js)
}

func (builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	b := &ipvsBalancer{ClientConn: cc, clock: clock.Get()}
	b.child = endpointsharding.NewBalancer(b, opts, balancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	return b
}

// ipvsBalancer wraps endpointsharding (one pick_first per endpoint) and
// replaces its picker with the configured IPVS scheduler. It embeds the
// parent ClientConn to intercept the children's UpdateState.
type ipvsBalancer struct {
	balancer.ClientConn
	child balancer.Balancer

	// mu guards the fields below; it is taken before the engine's own lock
	// (Engine.Update runs under it), never after.
	mu        sync.Mutex
	engine    *ipvs.Engine
	cfg       *Config
	clock     clock.Clock
	endpoints []resolver.Endpoint // the resolver's, in canonical order
	last      balancer.State      // the children's last aggregate state
	closed    bool
	// outliers is outlier detection (gRFC A50) when the config asks for
	// it; stopOutliers ends its interval loop.
	outliers     *ipvs.Outliers
	stopOutliers chan struct{}

	// Rebuild coalescing: endpointsharding reports every child's state
	// change, and a picker build is O(endpoints), so a burst (a 10,000
	// endpoint service coming up) would cost O(n^2). Builds are spaced by
	// ten times the last build's cost (at most 100 ms); changes in between
	// are folded into one trailing build.
	pending   bool
	nextBuild time.Time
	// The first endpoints warm up together: the first picker waits until
	// every endpoint has connected or failed once, for warmUp at most, so
	// the first RPCs after Dial are spread rather than all sent to the
	// backend that happened to connect first. warmUntil is set by the
	// first endpoints; warmed once the wait is over (later endpoints join
	// as they connect).
	warmUntil time.Time
	warmed    bool
	// gen numbers the decisions; only the newest one is published.
	gen atomic.Uint64
	// publishMu orders UpdateState calls (grpc-go's ClientConn takes its
	// own lock inside). Lock order: never taken with mu held, and mu is
	// never taken under it.
	publishMu sync.Mutex
}

func (b *ipvsBalancer) UpdateClientConnState(ccs balancer.ClientConnState) error {
	cfg, ok := ccs.BalancerConfig.(*Config)
	if !ok {
		return fmt.Errorf("%s: config of type %T: %w", Name, ccs.BalancerConfig, balancer.ErrBadResolverState)
	}
	endpoints := withXDSWeights(canonical(ccs.ResolverState.Endpoints))
	b.mu.Lock()
	if b.engine == nil {
		b.engine = ipvs.New(&cfg.Config, ipvs.Options{Clock: b.clock, Wrap: wrapDone})
	}
	if b.cfg == nil || !reflect.DeepEqual(b.cfg.OutlierDetection, cfg.OutlierDetection) {
		b.setOutliersLocked(cfg.OutlierDetection)
	}
	b.cfg = cfg
	b.endpoints = endpoints
	if b.warmUntil.IsZero() && len(endpoints) > 0 {
		b.warmUntil = b.clock.Now().Add(warmUp)
		b.clock.AfterFunc(warmUp, b.flush) // the wait's end, if an endpoint is still connecting then
	}
	b.mu.Unlock()
	// The children get the endpoints without our config; pick_first with
	// the health listener, as the built-in policies do.
	rs := ccs.ResolverState
	rs.Endpoints = endpoints
	return b.child.UpdateClientConnState(balancer.ClientConnState{ResolverState: pickfirst.EnableHealthListener(rs)})
}

// canonical sorts endpoints by address, so every client of a fleet agrees
// on the order (rr, fo ties, hash tables).
func canonical(eps []resolver.Endpoint) []resolver.Endpoint {
	out := make([]resolver.Endpoint, 0, len(eps))
	for _, ep := range eps {
		if len(ep.Addresses) > 0 {
			out = append(out, ep)
		}
	}
	slices.SortStableFunc(out, func(a, b resolver.Endpoint) int {
		return strings.Compare(a.Addresses[0].Addr, b.Addresses[0].Addr)
	})
	return out
}

// ResolverError keeps the last endpoints (the children's business) unless
// there are none: then RPCs fail with the resolver's own error, such as
// "service web.shop not found", rather than a generic one.
func (b *ipvsBalancer) ResolverError(err error) {
	b.child.ResolverError(err)
	b.mu.Lock()
	empty := b.engine == nil || len(b.endpoints) == 0
	var gen uint64
	if empty {
		gen = b.gen.Add(1)
	}
	b.mu.Unlock()
	if empty {
		b.publish(balancer.State{ConnectivityState: connectivity.TransientFailure,
			Picker: base.NewErrPicker(status.Error(codes.Unavailable, err.Error()))}, gen)
	}
}
func (b *ipvsBalancer) ExitIdle() { b.child.ExitIdle() }

func (b *ipvsBalancer) UpdateSubConnState(sc balancer.SubConn, state balancer.SubConnState) {
	logger.Errorf("ipvs: UpdateSubConnState(%v, %+v) called unexpectedly", sc, state)
}

func (b *ipvsBalancer) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		if b.engine != nil {
			b.engine.Close()
		}
		b.setOutliersLocked(nil)
	}
	b.mu.Unlock()
	b.child.Close()
}

// UpdateState receives the children's aggregate state: with READY
// children, the scheduler's picker replaces endpointsharding's round
// robin; without, the children's state passes through (their pickers queue
// RPCs while connecting and fail them in TRANSIENT_FAILURE).
func (b *ipvsBalancer) UpdateState(state balancer.State) {
	b.mu.Lock()
	if b.engine == nil || b.closed {
		b.mu.Unlock()
		return
	}
	b.last = state
	if anyReady(state) {
		if b.pending {
			b.mu.Unlock()
			return // the scheduled build will use this state
		}
		if wait := b.nextBuild.Sub(b.clock.Now()); wait > 0 {
			b.pending = true
			b.clock.AfterFunc(wait, b.flush)
			b.mu.Unlock()
			return
		}
	}
	out, gen := b.decideLocked()
	b.mu.Unlock()
	b.publish(out, gen)
}

// setOutliersLocked starts (or stops, for nil) outlier detection: every
// interval it evaluates the calls' outcomes, and when the ejected set
// changes the picker is built again without the ejected backends.
func (b *ipvsBalancer) setOutliersLocked(cfg *ipvs.OutlierDetection) {
	if b.stopOutliers != nil {
		close(b.stopOutliers)
		b.stopOutliers, b.outliers = nil, nil
	}
	if cfg == nil {
		return
	}
	o, stop := ipvs.NewOutliers(*cfg), make(chan struct{})
	b.outliers, b.stopOutliers = o, stop
	t := b.clock.NewTicker(o.Interval())
	go func() {
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.Chan():
			}
			b.mu.Lock()
			addrs := make([]string, len(b.endpoints))
			for i, ep := range b.endpoints {
				addrs[i] = ep.Addresses[0].Addr
			}
			if b.outliers != o || !o.Evaluate(b.clock.Now(), addrs) || b.closed {
				b.mu.Unlock()
				continue
			}
			out, gen := b.decideLocked()
			b.mu.Unlock()
			b.publish(out, gen)
		}
	}()
}

// flush is the trailing build of a coalesced burst.
func (b *ipvsBalancer) flush() {
	b.mu.Lock()
	b.pending = false
	if b.closed || b.last.Picker == nil { // nothing from the children yet
		b.mu.Unlock()
		return
	}
	out, gen := b.decideLocked()
	b.mu.Unlock()
	b.publish(out, gen)
}

func anyReady(state balancer.State) bool {
	for _, c := range endpointsharding.ChildStatesFromPicker(state.Picker) {
		if c.State.ConnectivityState == connectivity.Ready {
			return true
		}
	}
	return false
}

// decideLocked turns the children's last state into the state to publish.
func (b *ipvsBalancer) decideLocked() (balancer.State, uint64) {
	gen := b.gen.Add(1)
	state := b.last
	children := map[string]endpointsharding.ChildState{}
	ready := false
	for _, c := range endpointsharding.ChildStatesFromPicker(state.Picker) {
		if len(c.Endpoint.Addresses) > 0 {
			children[c.Endpoint.Addresses[0].Addr] = c
			ready = ready || c.State.ConnectivityState == connectivity.Ready
		}
	}
	if !ready {
		return state, gen
	}
	if !b.warmed {
		if b.stillWarmingLocked(children) {
			return balancer.State{ConnectivityState: connectivity.Connecting, Picker: base.NewErrPicker(balancer.ErrNoSubConnAvailable)}, gen
		}
		b.warmed = true
	}
	start := b.clock.Now()
	backends := make([]ipvs.Backend, 0, len(b.endpoints))
	for _, ep := range b.endpoints {
		addr := ep.Addresses[0].Addr
		info, _ := GetEndpointInfo(ep)
		v := ipvs.Backend{Addr: addr, Info: info, State: ipvs.Connecting}
		if c, ok := children[addr]; ok {
			switch {
			case b.outliers != nil && b.outliers.Ejected(addr):
				v.State = ipvs.Failed // ejected (gRFC A50): no picks until it returns
			case c.State.ConnectivityState == connectivity.Ready:
				ch := &child{picker: c.State.Picker}
				if b.outliers != nil {
					host := b.outliers.Host(addr)
					ch.outcome = func(di balancer.DoneInfo) { host.Record(di.Err == nil) }
				}
				v.State, v.Value = ipvs.Ready, ch
			case c.State.ConnectivityState == connectivity.TransientFailure:
				v.State = ipvs.Failed
			}
		}
		backends = append(backends, v)
	}
	p := newPicker(b.engine.Update(&b.cfg.Config, backends))
	now := b.clock.Now()
	b.nextBuild = now.Add(min(10*now.Sub(start), 100*time.Millisecond))
	return balancer.State{ConnectivityState: connectivity.Ready, Picker: p}, gen
}

// warmUp bounds how long the first picker waits for every endpoint to
// connect or fail once (a package hook: tests change it).
var warmUp = time.Second

// stillWarmingLocked: the first endpoints' wait is not over, and one of
// them has neither connected nor failed yet.
func (b *ipvsBalancer) stillWarmingLocked(children map[string]endpointsharding.ChildState) bool {
	if !b.clock.Now().Before(b.warmUntil) {
		return false
	}
	for _, ep := range b.endpoints {
		c, ok := children[ep.Addresses[0].Addr]
		if !ok {
			return true
		}
		switch c.State.ConnectivityState {
		case connectivity.Ready, connectivity.TransientFailure:
		default:
			return true
		}
	}
	return false
}

// publish hands a decision to the ClientConn unless a newer one exists.
// UpdateState is synchronous: it is never called with b.mu held.
func (b *ipvsBalancer) publish(state balancer.State, gen uint64) {
	b.publishMu.Lock()
	defer b.publishMu.Unlock()
	if gen != b.gen.Load() {
		return
	}
	b.ClientConn.UpdateState(state)
}
