// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package lbrecorder is test support for propagation benchmarks: a gRPC
// load-balancing policy that records when each address first reaches its
// ClientConn, the end of a resolver's (or an xDS client's) path.
package lbrecorder

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/serviceconfig"
)

// Builder builds Recorders and keeps them, in the order built.
type Builder struct {
	name string
	mu   sync.Mutex
	recs []*Recorder
}

// Register registers a recorder policy under name (registering over
// another policy's name replaces it in this process) and returns it.
func Register(name string) *Builder {
	b := &Builder{name: name}
	balancer.Register(b)
	return b
}

// Name is the policy's name.
func (b *Builder) Name() string { return b.name }

// Build makes a Recorder for a ClientConn.
func (b *Builder) Build(balancer.ClientConn, balancer.BuildOptions) balancer.Balancer {
	r := &Recorder{seen: map[string]time.Time{}}
	b.mu.Lock()
	b.recs = append(b.recs, r)
	b.mu.Unlock()
	return r
}

type anyConfig struct {
	serviceconfig.LoadBalancingConfig
}

// ParseConfig accepts any configuration (the policy it stands in for may
// be configured).
func (b *Builder) ParseConfig(json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return anyConfig{}, nil
}

// Built is how many recorders were built so far.
func (b *Builder) Built() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.recs)
}

// Wait returns the n recorders built after the first ones, once there
// are that many (60 s at most).
func (b *Builder) Wait(tb testing.TB, first, n int) []*Recorder {
	deadline := time.Now().Add(60 * time.Second)
	for {
		b.mu.Lock()
		recs := slices.Clone(b.recs[first:])
		b.mu.Unlock()
		if len(recs) >= n {
			return recs[:n]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d ClientConns built their policy", len(recs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Recorder notes when each address first reached it ("" for the first
// update of all).
type Recorder struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// UpdateClientConnState records the update's addresses.
func (r *Recorder) UpdateClientConnState(s balancer.ClientConnState) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[""]; !ok {
		r.seen[""] = now
	}
	for _, ep := range s.ResolverState.Endpoints {
		if _, ok := r.seen[ep.Addresses[0].Addr]; !ok {
			r.seen[ep.Addresses[0].Addr] = now
		}
	}
	return nil
}

// ResolverError is ignored.
func (r *Recorder) ResolverError(error) {}

// UpdateSubConnState is ignored: a recorder makes no SubConns.
func (r *Recorder) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

// Close does nothing.
func (r *Recorder) Close() {}

// ExitIdle does nothing.
func (r *Recorder) ExitIdle() {}

// At is when addr first reached this recorder.
func (r *Recorder) At(addr string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.seen[addr]
	return t, ok
}

// WaitAll waits until addr has reached every recorder (60 s at most).
func WaitAll(tb testing.TB, recs []*Recorder, addr string) {
	deadline := time.Now().Add(60 * time.Second)
	for _, r := range recs {
		for {
			if _, ok := r.At(addr); ok {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("address %q did not reach every ClientConn", addr)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}
