// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/svcreg/svcreg/internal/clock/clocktest"
)

// spec is one backend of a harness.
type spec struct {
	name         string
	weight       uint32
	upper, lower uint32
	terminating  bool
	down         bool // TRANSIENT_FAILURE
	connecting   bool // not READY yet (CONNECTING)
}

func specs(weights ...uint32) []spec {
	out := make([]spec, len(weights))
	for i, w := range weights {
		out[i] = spec{name: string(rune('A' + i)), weight: w}
	}
	return out
}

// harness drives pickers built from fake children, a fake clock and a
// seeded random source, and keeps the Done of every outstanding RPC.
type harness struct {
	t        testing.TB
	clock    *clocktest.Fake
	st       *state
	p        *picker
	specs    []spec
	inflight map[string][]func()
	history  []*picker // every picker built, oldest first
}

// A harness's requests: the client's identity is its source key (as a
// gRPC client's, with no key header), and its method the destination key.
var (
	clientKey = Hash("a test client")
	methodKey = Hash("/svc/Method")
)

func newHarness(t testing.TB, cfgJSON string, backends []spec) *harness {
	t.Helper()
	cfg, err := ParseConfig(json.RawMessage(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: clocktest.New(), inflight: map[string][]func(){}}
	h.st = newState(cfg, h.clock, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	h.st.rand = rng.Uint64N
	h.set(backends)
	return h
}

// set replaces the backends (a resolver update) and rebuilds the picker.
func (h *harness) set(backends []spec) {
	h.specs = backends
	h.rebuild()
}

func (h *harness) rebuild() {
	views := make([]Backend, len(h.specs))
	for i, s := range h.specs {
		views[i] = Backend{Addr: s.name, Info: EndpointInfo{Weight: s.weight, UpperThreshold: s.upper, LowerThreshold: s.lower, Terminating: s.terminating}}
		switch {
		case s.down:
			views[i].State = Failed
		case s.connecting:
			views[i].State = Connecting
		}
	}
	// Engine.Update sorts into canonical order; so are the tests' names.
	h.p = buildPicker(h.st, views)
	h.history = append(h.history, h.p)
}

// pickReq picks and keeps the request outstanding.
func (h *harness) pickReq(req Request) (string, error) {
	got, err := h.p.pick(req)
	if err != nil {
		return "", err
	}
	h.inflight[got.Addr] = append(h.inflight[got.Addr], got.Release)
	return got.Addr, nil
}

func (h *harness) pick() string {
	h.t.Helper()
	name, err := h.pickReq(Request{Source: clientKey, Dest: methodKey})
	if err != nil {
		return "!" + err.Error()
	}
	return name
}

// pickKey picks with a request key (as a gRPC client's hashKey header, or
// the node agent's client address): both the source and the destination.
func (h *harness) pickKey(key string) string {
	k := Hash(key)
	name, err := h.pickReq(Request{Source: k, Dest: k})
	if err != nil {
		return ""
	}
	return name
}

// picks picks n times, completing none.
func (h *harness) picks(n int) string {
	var out []string
	for range n {
		out = append(out, h.pick())
	}
	return strings.Join(out, " ")
}

// cycle picks and completes n times.
func (h *harness) cycle(n int) string {
	var out []string
	for range n {
		name := h.pick()
		out = append(out, name)
		h.complete(name)
	}
	return strings.Join(out, " ")
}

// complete finishes one outstanding RPC of name.
func (h *harness) complete(name string) {
	q := h.inflight[name]
	if len(q) == 0 {
		return
	}
	if q[0] != nil { // schedulers that count nothing set no release
		q[0]()
	}
	h.inflight[name] = q[1:]
}

func (h *harness) backend(name string) *backend { return h.st.backends[name] }

// backendGone returns the record of a backend that left, through the Done
// of one of its outstanding RPCs' pickers: the slot it had.
func (h *harness) backendGone(name string) *backend {
	for _, p := range h.history {
		for i := range p.slots {
			if p.slots[i].addr == name {
				return p.slots[i].b
			}
		}
	}
	return nil
}

// setLoad sets a backend's counters directly (for the vectors that start
// from a given state).
func (h *harness) setLoad(name string, active, inactive int64) {
	b := h.backend(name)
	for i := range b.inactive {
		b.inactive[i].Store(0)
	}
	b.inactive[0].Store(inactive)
	b.load.Store(uint64(active)<<32 + uint64(inactive))
	b.refreshKey()
}

// tick advances the fake clock and runs the balancer's tick.
func (h *harness) tick(d time.Duration) {
	h.clock.Advance(d)
	h.st.tick(h.st.tickWork())
}

func isNoDestination(err error) bool { return errors.Is(err, ErrNoDestination) }

func count(seq string) map[string]int {
	m := map[string]int{}
	for _, f := range strings.Fields(seq) {
		m[f]++
	}
	return m
}

func cfg(scheduler string, extra ...string) string {
	parts := append([]string{fmt.Sprintf(`"scheduler":%q`, scheduler)}, extra...)
	return "{" + strings.Join(parts, ",") + "}"
}
