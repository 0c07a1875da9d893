// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"slices"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/svcreg/svcreg/internal/clock"
)

// The scheduler engine: the 14 schedulers, persistence and the
// terminating fallback over plain backends, with no RPC type in it. A pick
// is kube-proxy's NextEndpoint in IPVS's terms: the request's keys in, a
// backend out, counted as active until its release (then as inactive for
// the inactive window). The ipvs gRPC policy (package balancer) and the
// node agent (internal/proxy) are adapters over it.
//
// An Engine keeps what survives rebuilds (one record per backend address
// with its counters, the rr cursor, the wrr cycle, the lblc/lblcr,
// persistence and hash tables); Update makes an immutable Picker over the
// current backends, which picks with atomics and never blocks.

// State is a backend's connection state, as its adapter sees it.
type State uint8

const (
	// Ready backends take requests.
	Ready State = iota
	// Connecting backends take none yet: a request whose hash key maps to
	// one waits (ErrConnecting).
	Connecting
	// Failed backends take none: a hash key that maps to one fails, or
	// falls back.
	Failed
)

// Backend is one backend of an Update.
type Backend struct {
	Addr  string // its identity (host:port), and the canonical order
	Info  EndpointInfo
	State State
	// Value is the adapter's own (a gRPC child picker); picks return it.
	Value any
}

// EndpointInfo is what the schedulers read of a backend: the registry
// endpoint's scheduling attributes.
type EndpointInfo struct {
	// Weight is the scheduling weight, 0..65535; 0 quiesces the endpoint.
	Weight uint32
	// UpperThreshold (ipvsadm -x) is the outstanding-request count at which
	// the endpoint is overloaded; 0 means no threshold.
	UpperThreshold uint32
	// LowerThreshold (ipvsadm -y) is the count below which an overloaded
	// endpoint takes requests again; 0 means three quarters of the upper
	// one.
	LowerThreshold uint32
	// Terminating marks a draining endpoint that still serves: it gets
	// requests only when no other endpoint can take them (KEP-1669).
	Terminating bool
	// Zone, Node and Hostname describe the endpoint's topology and name.
	Zone, Node, Hostname string
}

// DefaultEndpointInfo is assumed for a backend nothing describes.
var DefaultEndpointInfo = EndpointInfo{Weight: 1}

// MaxWeight is the largest weight (ipvsadm's).
const MaxWeight = 65535

// Request is what a pick knows of a request: its keys, hashed (Hash).
// Source is the key of sh, mh and persistence (ipvsadm's source address:
// the client's identity, or a request key); Dest that of dh, lblc and
// lblcr (the destination: a request key, or the method). A scheduler reads
// only its own (NeedsSource, NeedsDest).
type Request struct {
	Source, Dest uint64
}

// Picked is a pick's backend and what ends its request.
type Picked struct {
	Addr  string
	Value any // the Backend's Value
	// Release ends the request; call it once. Nil when the picker counts
	// nothing (a scheduler that reads no load, without thresholds or
	// persistence): there is nothing to end.
	Release func()
	// Wrapped is Release in the adapter's form (Options.Wrap), or nil.
	Wrapped any
}

// Options configure an Engine.
type Options struct {
	// Clock is the time source; default the process's (clock.Get).
	Clock clock.Clock
	// Wrap, when set, makes an adapter's form of a release function (a
	// gRPC Done func(balancer.DoneInfo)). The engine calls it once per
	// backend and once per persistence entry, never per pick, and hands
	// the result back as Picked.Wrapped: an adapter converts nothing per
	// request.
	Wrap func(release func()) any
}

// Engine schedules requests over a set of backends.
type Engine struct {
	mu      sync.Mutex // guards st's build-time fields; held by Update and the ticker, never by Pick
	st      *state
	stop    chan struct{}
	ticking bool
	closed  bool
}

// New returns an engine with cfg (ParseConfig) and no backends.
func New(cfg *Config, opts Options) *Engine {
	if opts.Clock == nil {
		opts.Clock = clock.Get()
	}
	return &Engine{st: newState(cfg, opts.Clock, opts.Wrap), stop: make(chan struct{})}
}

// Update replaces the configuration (nil keeps it) and the backends, and
// returns the picker over them. Backends are put in canonical (address)
// order, which every client of a fleet agrees on (rr, fo ties, hash
// tables). Requests picked before keep counting against their backend
// until released, even if it left.
func (e *Engine) Update(cfg *Config, backends []Backend) *Picker {
	views := slices.Clone(backends)
	slices.SortStableFunc(views, func(a, b Backend) int { return strings.Compare(a.Addr, b.Addr) })
	e.mu.Lock()
	defer e.mu.Unlock()
	if cfg != nil {
		e.st.configure(cfg)
	}
	p := &Picker{p: buildPicker(e.st, views)}
	if !e.ticking && !e.closed && e.st.tickInterval() > 0 {
		e.ticking = true
		go e.tickLoop()
	}
	return p
}

// Close stops the engine's ticker.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.stop)
	}
}

// tickLoop rotates the inactive window and ages the tables until Close.
func (e *Engine) tickLoop() {
	e.mu.Lock()
	interval := e.st.tickInterval()
	e.mu.Unlock()
	t := e.st.clock.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.Chan():
			e.mu.Lock()
			work := e.st.tickWork()
			e.mu.Unlock()
			e.st.tick(work)
		}
	}
}

// Picker is an immutable snapshot of the backends (plus atomics).
type Picker struct{ p *picker }

// Pick chooses a backend for a request: ErrConnecting when the request's
// backend is still connecting, ErrNoDestination when none can take it.
// The Picked is shared and must not be modified.
func (p *Picker) Pick(req Request) (*Picked, error) { return p.p.pick(req) }

// Config is the configuration the picker was built with.
func (p *Picker) Config() *Config { return p.p.cfg }

// Candidates is how many backends are ready and not terminating.
func (p *Picker) Candidates() int { return len(p.p.cand) }

// NeedsSource reports whether the scheduler (or persistence) reads
// Request.Source.
func (c *Config) NeedsSource() bool {
	return c.PersistenceTimeout > 0 || c.Scheduler == "sh" || c.Scheduler == "mh"
}

// NeedsDest reports whether the scheduler reads Request.Dest.
func (c *Config) NeedsDest() bool {
	return c.Scheduler == "dh" || c.Scheduler == "lblc" || c.Scheduler == "lblcr"
}

// Hash is the fixed-seed 64-bit hash of a request key every process
// agrees on (xxHash64, seed 0; never hash/maphash, whose seed is random).
func Hash(s string) uint64 { return xxhash.Sum64String(s) }

// Mix combines a secondary key into a hash (ipvsadm's sh-port, mh-port).
func Mix(h, h2 uint64) uint64 {
	h ^= h2 + 0x9e3779b97f4a7c15 + h<<6 + h>>2
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func hashString(s string) uint64 { return Hash(s) }
func mix(h, h2 uint64) uint64    { return Mix(h, h2) }
