// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package proxy is svcreg proxy, the node agent that makes cluster IPs
// and node ports real (docs/proxy.md), as kube-proxy does: it follows
// every service and its endpoints, and programs a data plane: userspace
// (a listener per service port that picks a backend per connection with
// the service's own scheduler) or nftables (DNAT rules in the kernel).
package proxy

import (
	"context"
	"log/slog"
	"maps"
	"sync"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/reason"
)

// catalog follows the registry through one Watch of every service and
// every endpoint in every namespace: kube-proxy's two informers (Services,
// EndpointSlices) as one stream, whose snapshot is one consistent read.
// The cost is one stream per node whatever the number of services (it
// was one more per service). It keeps the last state while the registry
// is away, resumes from the last revision after a disconnect, and lists
// again when the registry cannot resume.
type catalog struct {
	reg svcregv1grpc.RegistryServiceClient
	log *slog.Logger

	mu sync.Mutex // guards views and listed; never held while sending on changed
	// views are the proxied services' views, by namespace/name. A view is
	// replaced, never changed, so a snapshot may share them.
	views   map[string]endpointwatch.View
	changed chan struct{} // 1-buffered: views changed
	// listed: the first snapshot arrived whole (SYNCED). Before, nothing
	// is announced: a data plane programmed from part of the registry
	// would drop frontends an agent restarted under running connections
	// still serves.
	listed bool
}

func newCatalog(reg svcregv1grpc.RegistryServiceClient, log *slog.Logger) *catalog {
	return &catalog{reg: reg, log: log, views: map[string]endpointwatch.View{}, changed: make(chan struct{}, 1)}
}

// snapshot is the current views, a copy.
func (c *catalog) snapshot() map[string]endpointwatch.View {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.views)
}

func (c *catalog) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// run follows the registry until ctx ends.
func (c *catalog) run(ctx context.Context) {
	var rev int64
	bo := endpointwatch.NewBackoff()
	for ctx.Err() == nil {
		err := c.follow(ctx, &rev, bo)
		if ctx.Err() != nil {
			return
		}
		switch reason.Of(err) {
		case reason.ResourceVersionTooOld, reason.ResourceVersionAhead:
			rev = 0 // list again
			continue
		}
		c.log.Warn("watching the registry's services and endpoints; keeping the last state and retrying", "err", err)
		if clock.Sleep(ctx, bo.Next()) != nil {
			return
		}
	}
}

// follow runs one Watch: from a snapshot (rev 0), which replaces the
// views at once when it is whole, or from rev.
func (c *catalog) follow(ctx context.Context, rev *int64, bo *endpointwatch.Backoff) error {
	st, err := c.reg.Watch(ctx, &svcregv1.WatchRequest{Namespace: meta.AllNamespaces, ResourceVersion: *rev,
		Kinds: []svcregv1.ObjectKind{svcregv1.ObjectKind_OBJECT_KIND_SERVICE, svcregv1.ObjectKind_OBJECT_KIND_ENDPOINT}})
	if err != nil {
		return err
	}
	var listing map[string]endpointwatch.View // during a snapshot
	if *rev == 0 {
		listing = map[string]endpointwatch.View{}
	}
	for {
		ev, err := st.Recv()
		if err != nil {
			return err
		}
		bo.Reset()
		switch ev.GetType() {
		case svcregv1.EventType_EVENT_TYPE_SYNCED:
			*rev = ev.GetResourceVersion()
			if listing != nil {
				c.mu.Lock()
				c.views, c.listed = listing, true
				c.mu.Unlock()
				listing = nil
				c.notify()
			}
			continue
		case svcregv1.EventType_EVENT_TYPE_BOOKMARK:
			*rev = max(*rev, ev.GetResourceVersion())
			continue
		}
		if listing != nil {
			apply(listing, ev)
			continue
		}
		*rev = max(*rev, ev.GetResourceVersion())
		c.mu.Lock()
		changed := apply(c.views, ev) && c.listed
		c.mu.Unlock()
		if changed {
			c.notify()
		}
	}
}

// apply folds one event into views (replacing the view it changes) and
// reports whether anything changed.
func apply(views map[string]endpointwatch.View, ev *svcregv1.WatchResponse) bool {
	deleted := ev.GetType() == svcregv1.EventType_EVENT_TYPE_DELETED
	switch {
	case ev.GetService() != nil:
		svc := ev.GetService()
		key := meta.Key(svc.GetNamespace(), svc.GetName())
		v := views[key]
		if deleted {
			// Its endpoints went (or go) with it.
			delete(views, key)
			return true
		}
		views[key] = endpointwatch.View{Revision: ev.GetResourceVersion(), Service: svc, Endpoints: v.Endpoints}
		return true
	case ev.GetEndpoint() != nil:
		ep := ev.GetEndpoint()
		key := meta.Key(ep.GetNamespace(), ep.GetService())
		v := views[key]
		eps := maps.Clone(v.Endpoints)
		if eps == nil {
			eps = map[string]*svcregv1.Endpoint{}
		}
		if deleted {
			delete(eps, ep.GetInstance())
		} else {
			eps[ep.GetInstance()] = ep
		}
		if v.Service == nil && len(eps) == 0 {
			delete(views, key) // the last endpoint of a service already gone
			return true
		}
		views[key] = endpointwatch.View{Revision: ev.GetResourceVersion(), Service: v.Service, Endpoints: eps}
		return true
	}
	return false
}
