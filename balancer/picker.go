// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"math/rand/v2"

	"google.golang.org/grpc/balancer"

	"github.com/svcreg/svcreg/internal/ipvs"
)

// picker is the gRPC face of an engine's picker: it reads the RPC's keys
// (only those the scheduler needs), lets the engine choose, and hands the
// RPC to the chosen endpoint's pick_first child.
type picker struct {
	ip           *ipvs.Picker
	cfg          *ipvs.Config
	clientKey    uint64 // hash of the client identity (sh, mh, persistence)
	source, dest bool   // the scheduler reads Request.Source, Request.Dest
}

// processID is this client's identity when the config names none.
var processID = func() string {
	var b [8]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return string(b[:])
}()

func newPicker(ip *ipvs.Picker) *picker {
	cfg := ip.Config()
	id := cfg.ClientID
	if id == "" {
		id = processID
	}
	return &picker{ip: ip, cfg: cfg, clientKey: ipvs.Hash(id), source: cfg.NeedsSource(), dest: cfg.NeedsDest()}
}

// Pick implements balancer.Picker. "No destination" is a plain error, not
// a status: fail-fast RPCs fail with UNAVAILABLE and wait-for-ready RPCs
// wait for the next picker.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	var req ipvs.Request
	if p.source {
		req.Source = p.requestKey(info, false)
	}
	if p.dest {
		req.Dest = p.requestKey(info, true)
	}
	got, err := p.ip.Pick(req)
	switch err {
	case nil:
	case ipvs.ErrConnecting:
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	default:
		return balancer.PickResult{}, err
	}
	ch := got.Value.(*child)
	res, err := ch.picker.Pick(info)
	if err != nil {
		if got.Release != nil {
			got.Release()
		}
		return res, err
	}
	if got.Wrapped != nil {
		chainDone(&res, got.Wrapped.(func(balancer.DoneInfo)))
	}
	if ch.outcome != nil {
		chainDone(&res, ch.outcome)
	}
	return res, nil
}

// child is a READY endpoint's pick_first picker, as the engine's
// Backend.Value: a concrete type, so that a pick asserts a type rather
// than looks up an interface table.
type child struct {
	picker balancer.Picker
	// outcome records the call's result for outlier detection (nil when
	// it is off).
	outcome func(balancer.DoneInfo)
}

// wrapDone is the engine's Options.Wrap: a release as gRPC's Done, made
// once per backend and per persistence entry.
func wrapDone(release func()) any {
	return func(balancer.DoneInfo) { release() }
}

// chainDone makes res.Done call done, then the child's own Done if it set
// one (pick_first sets none; a child that does costs an allocation).
func chainDone(res *balancer.PickResult, done func(balancer.DoneInfo)) {
	if childDone := res.Done; childDone != nil {
		res.Done = func(di balancer.DoneInfo) {
			done(di)
			childDone(di)
		}
		return
	}
	res.Done = done
}
