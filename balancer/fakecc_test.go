// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// fakeCC is a balancer.ClientConn whose SubConns become READY at once. It
// queues state and health callbacks and delivers them after the policy's
// call returns (pick_first calls Connect holding its own lock), as the
// real ClientConn's serializer does.
type fakeCC struct {
	balancer.ClientConn
	mu     sync.Mutex
	queue  []func()
	picker balancer.Picker
	state  connectivity.State
}

type fakeCCSubConn struct {
	balancer.SubConn
	cc       *fakeCC
	addr     string
	listener func(balancer.SubConnState)
}

func (cc *fakeCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	return &fakeCCSubConn{cc: cc, addr: addrs[0].Addr, listener: opts.StateListener}, nil
}
func (cc *fakeCC) RemoveSubConn(balancer.SubConn)                       {}
func (cc *fakeCC) UpdateAddresses(balancer.SubConn, []resolver.Address) {}
func (cc *fakeCC) ResolveNow(resolver.ResolveNowOptions)                {}
func (cc *fakeCC) Target() string                                       { return "fake:///bench" }
func (cc *fakeCC) MetricsRecorder() estats.MetricsRecorder              { return noMetrics{} }
func (cc *fakeCC) UpdateState(s balancer.State) {
	cc.mu.Lock()
	cc.picker, cc.state = s.Picker, s.ConnectivityState
	cc.mu.Unlock()
}

func (cc *fakeCC) enqueue(f func()) {
	cc.mu.Lock()
	cc.queue = append(cc.queue, f)
	cc.mu.Unlock()
}

// settle delivers queued callbacks until none are left.
func (cc *fakeCC) settle() {
	for {
		cc.mu.Lock()
		q := cc.queue
		cc.queue = nil
		cc.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, f := range q {
			f()
		}
	}
}

type noMetrics struct {
	estats.UnimplementedMetricsRecorder
}

func (sc *fakeCCSubConn) Connect() {
	sc.cc.enqueue(func() {
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Connecting})
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
	})
}
func (sc *fakeCCSubConn) RegisterHealthListener(l func(balancer.SubConnState)) {
	sc.cc.enqueue(func() { l(balancer.SubConnState{ConnectivityState: connectivity.Ready}) })
}
func (sc *fakeCCSubConn) Shutdown()                          {}
func (sc *fakeCCSubConn) UpdateAddresses([]resolver.Address) {}

// builtPolicy is a registered policy built through its real Build over n
// READY endpoints.
type builtPolicy struct {
	b   balancer.Balancer
	cc  *fakeCC
	eps []resolver.Endpoint
	n   int
	cfg serviceconfig.LoadBalancingConfig // the last configuration sent
}

// buildPolicy builds a registered policy over n READY endpoints and
// returns its picker.
func buildPolicy(tb testing.TB, name, cfgJSON string, n int, weights func(i int) uint32) balancer.Picker {
	return newBuiltPolicy(tb, name, cfgJSON, n, weights).picker(tb)
}

func newBuiltPolicy(tb testing.TB, name, cfgJSON string, n int, weights func(i int) uint32) *builtPolicy {
	tb.Helper()
	builder := balancer.Get(name)
	if builder == nil {
		tb.Fatalf("policy %s not registered", name)
	}
	bp := &builtPolicy{cc: &fakeCC{}, n: n}
	bp.b = builder.Build(bp.cc, balancer.BuildOptions{})
	tb.Cleanup(bp.b.Close)
	bp.eps = make([]resolver.Endpoint, n)
	for i := range bp.eps {
		ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: fmt.Sprintf("10.%d.%d.%d:443", i>>16&255, i>>8&255, i&255)}}}
		if weights != nil {
			ep = SetEndpointInfo(ep, EndpointInfo{Weight: weights(i)})
		}
		bp.eps[i] = ep
	}
	bp.configure(tb, name, cfgJSON)
	return bp
}

// configure sends the endpoints with a (new) configuration.
func (bp *builtPolicy) configure(tb testing.TB, name, cfgJSON string) {
	tb.Helper()
	var lbCfg serviceconfig.LoadBalancingConfig
	if p, ok := balancer.Get(name).(balancer.ConfigParser); ok && cfgJSON != "" {
		var err error
		if lbCfg, err = p.ParseConfig(json.RawMessage(cfgJSON)); err != nil {
			tb.Fatal(err)
		}
	}
	bp.cfg = lbCfg
	if err := bp.b.UpdateClientConnState(balancer.ClientConnState{ResolverState: resolver.State{Endpoints: bp.eps}, BalancerConfig: lbCfg}); err != nil {
		tb.Fatal(err)
	}
	bp.cc.settle()
}

// picker waits for a READY picker over every endpoint, built with the last
// configuration (an ipvs trailing build may still be pending).
func (bp *builtPolicy) picker(tb testing.TB) balancer.Picker {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		bp.cc.mu.Lock()
		p, state := bp.cc.picker, bp.cc.state
		bp.cc.mu.Unlock()
		if state == connectivity.Ready {
			if ip, ok := p.(*picker); !ok || ip.ip.Candidates() == bp.n && ip.cfg == &bp.cfg.(*Config).Config {
				return p
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("state %v after settling", state)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBuildThroughTheRealPolicy(t *testing.T) {
	p := buildPolicy(t, Name, `{"scheduler":"rr"}`, 3, nil)
	seen := map[string]bool{}
	for range 6 {
		res, err := p.Pick(balancer.PickInfo{Ctx: t.Context()})
		if err != nil {
			t.Fatal(err)
		}
		seen[res.SubConn.(*fakeCCSubConn).addr] = true
		if res.Done != nil {
			res.Done(balancer.DoneInfo{})
		}
	}
	if len(seen) != 3 {
		t.Errorf("picked %v", seen)
	}
}
