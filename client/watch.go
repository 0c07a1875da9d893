// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package client

import (
	"context"
	"iter"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/endpointwatch"
)

// WatchEndpoints streams a service's endpoint events (see the
// WatchEndpoints RPC), reconnecting after failures with backoff and
// resuming after the last revision it delivered. When resuming is
// impossible (the revision left the registry's history, the registry
// restarted with a younger one, or the stream broke during the snapshot)
// it lists again: a new snapshot of ADDED events and a SYNCED marker, which
// replace everything seen before. It ends when ctx does, or with an error
// retrying cannot fix. WatchService keeps that bookkeeping for you.
func (c *Client) WatchEndpoints(ctx context.Context, namespace, service string) iter.Seq2[*svcregv1.WatchEndpointsResponse, error] {
	return func(yield func(*svcregv1.WatchEndpointsResponse, error) bool) {
		for ev, err := range endpointwatch.New(c.RegistryServiceClient, namespace, service, nil).Events(ctx) {
			if !yield(ev.WatchEndpointsResponse, err) || err != nil {
				return
			}
		}
	}
}

// ServiceView is a consistent state of one service and its endpoints.
type ServiceView = endpointwatch.View

// WatchService keeps a view of a service and its endpoints and calls onView
// with each new one: after a snapshot and after each change, never a
// half-applied one. onView runs on the watching goroutine; each view is a
// copy (O(endpoints) per change). onError, if not nil, hears of connection
// failures (the watch keeps retrying and, once it had a view, keeps it
// meanwhile). It returns when ctx ends, or with an error retrying cannot
// fix.
func (c *Client) WatchService(ctx context.Context, namespace, service string, onView func(ServiceView), onError func(error)) error {
	return endpointwatch.New(c.RegistryServiceClient, namespace, service, onError).Follow(ctx, onView)
}
