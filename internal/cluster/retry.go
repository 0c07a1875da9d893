// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// DefaultHold is how long a write (or a leader-only request) waits for a
// leader, retrying, before it fails with ErrNoLeader: the one figure
// every such wait uses (Config.HoldTimeout).
const DefaultHold = 7 * time.Second

// retryBackoff is the first retry's delay and the cap: each retry waits
// twice as long, with jitter, and at once when a new leader is seen.
var retryBackoff = [2]time.Duration{10 * time.Millisecond, 200 * time.Millisecond}

// WithLeader runs try until it succeeds, fails for good, or its deadline:
// the caller's, or the hold timeout, whichever comes first. try reports
// whether another attempt may succeed (no leader yet, leadership moved);
// a retry waits (backoff with jitter) or goes at once when this server
// sees a new leader. When the deadline passes it returns the last error
// wrapped in ErrNoLeader, or the caller's own context error.
func WithLeader[T any](ctx context.Context, n Leaders, try func(ctx context.Context) (T, error, bool)) (T, error) {
	hold, cancel := context.WithTimeout(ctx, n.Hold())
	defer cancel()
	delay := retryBackoff[0]
	for {
		changed := n.LeaderChanged()
		res, err, retry := try(hold)
		if !retry {
			return res, err
		}
		select {
		case <-hold.Done():
			var zero T
			if ctx.Err() != nil {
				return zero, ctx.Err() // the caller gave up: say so, not "no leader"
			}
			return zero, fmt.Errorf("%w answered within %v: %v", ErrNoLeader, n.Hold(), err)
		case <-changed:
		case <-time.After(delay/2 + rand.N(delay/2+1)):
		}
		delay = min(2*delay, retryBackoff[1])
	}
}

// Leaders is what WithLeader needs of a server (a *Node).
type Leaders interface {
	// LeaderChanged is closed when this server next sees the leader
	// change.
	LeaderChanged() <-chan struct{}
	// Hold is the hold timeout.
	Hold() time.Duration
}

// Hold is the hold timeout.
func (n *Node) Hold() time.Duration { return n.cfg.HoldTimeout }

// LeaderChanged is closed when this server next sees the leader change.
func (n *Node) LeaderChanged() <-chan struct{} { return n.leaderChange() }
