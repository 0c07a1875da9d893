// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package clock is svcreg's one time interface. The server side takes a
// Clock in its configuration (server.Config.Clock: leases, sessions and
// every command's timestamp); the client side (the SDK, the resolver,
// endpointwatch, the balancer and the scheduler engine) reads the
// process's clock through Get, because those packages share the process's
// registry connections and watches, and tests replace it as grpc-go
// replaces its internal time hooks. Tests use clocktest's fake for both.
package clock

import (
	"context"
	"sync/atomic"
	"time"
)

// Clock is what the client side asks of time.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
	NewTicker(d time.Duration) Ticker
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a time.Timer.
type Timer interface {
	Chan() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is a time.Ticker.
type Ticker interface {
	Chan() <-chan time.Time
	Stop()
}

var current atomic.Pointer[Clock]

func init() {
	real := Real()
	current.Store(&real)
}

// Real is the machine's clock.
func Real() Clock { return realClock{} }

// Get is the process's clock.
func Get() Clock { return *current.Load() }

// Set replaces the process's clock (tests) and returns a function that
// puts the previous one back.
func Set(c Clock) (restore func()) {
	prev := current.Swap(&c)
	return func() { current.Store(prev) }
}

// Now is Get().Now().
func Now() time.Time { return Get().Now() }

// Since is the time elapsed since t on the clock.
func Since(t time.Time) time.Duration { return Now().Sub(t) }

// Sleep waits d on the clock, or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := Get().NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer            { return realTimer{time.NewTimer(d)} }
func (realClock) NewTicker(d time.Duration) Ticker          { return realTicker{time.NewTicker(d)} }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return realTimer{time.AfterFunc(d, f)} }

type realTimer struct{ *time.Timer }

func (t realTimer) Chan() <-chan time.Time { return t.C }

type realTicker struct{ *time.Ticker }

func (t realTicker) Chan() <-chan time.Time { return t.C }
