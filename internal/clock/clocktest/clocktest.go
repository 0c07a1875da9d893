// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package clocktest is a fake clock.Clock for tests: it moves only when
// the test advances it, and tells the test when the code under test waits
// on it. A server takes one in its Config; the client side's packages
// read it once Install made it the process's clock.
package clocktest

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/svcreg/svcreg/internal/clock"
)

// Fake is a clock.Clock over clockwork's fake clock.
type Fake struct{ *clockwork.FakeClock }

// New returns a fake clock at a fixed time.
func New() *Fake { return NewAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

// NewAt returns a fake clock at t.
func NewAt(t time.Time) *Fake { return &Fake{clockwork.NewFakeClockAt(t)} }

// Install makes a new fake the process's clock for the test's duration.
func Install(t testing.TB) *Fake {
	f := New()
	t.Cleanup(clock.Set(f))
	return f
}

// NewTimer implements clock.Clock.
func (f *Fake) NewTimer(d time.Duration) clock.Timer { return f.FakeClock.NewTimer(d) }

// NewTicker implements clock.Clock.
func (f *Fake) NewTicker(d time.Duration) clock.Ticker { return f.FakeClock.NewTicker(d) }

// AfterFunc implements clock.Clock.
func (f *Fake) AfterFunc(d time.Duration, fn func()) clock.Timer { return f.FakeClock.AfterFunc(d, fn) }

// AdvanceWhenWaiting waits (up to 10 s of real time) until n timers or
// tickers wait on the clock, then moves it by d.
func (f *Fake) AdvanceWhenWaiting(t testing.TB, n int, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("%d waiters on the fake clock never came", n)
	}
	f.Advance(d)
}
