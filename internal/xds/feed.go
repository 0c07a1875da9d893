// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
)

// Feed keeps the xDS resources of every service in step with the local
// store. A commit marks the services it touched (in the store's commit
// hook, which must not block: a set and a nudge), and the feed's one
// goroutine rebuilds those from a read of the store and hands the
// resources that changed to per-type LinearCaches, which push each to
// the clients subscribed to that name alone. (go-control-plane's
// snapshot cache in ADS mode would push every change to every client.)
type Feed struct {
	st  *store.Store
	log *slog.Logger

	caches map[string]*cache.LinearCache // by type URL
	zones  *zonedEDS                     // the endpoints clients of each zone get
	mux    *cache.MuxCache

	// mu guards the dirty set only: the commit hook takes it under the
	// store's write lock, and the run goroutine swaps the set out and
	// releases it before it reads the store or touches a cache.
	mu    sync.Mutex
	dirty map[string]bool // namespace/name of services to rebuild
	all   bool            // rebuild everything (start, restore)
	wake  chan struct{}   // 1-buffered

	have map[string]serviceResources // the run goroutine's: what the caches hold, by service
}

// NewFeed returns a feed of st; register it before the store's first
// write (its commit hook), then Run it.
func NewFeed(st *store.Store, log *slog.Logger) *Feed {
	f := &Feed{st: st, log: log, caches: map[string]*cache.LinearCache{}, dirty: map[string]bool{}, all: true,
		wake: make(chan struct{}, 1), have: map[string]serviceResources{}}
	for _, typ := range []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.EndpointType} {
		f.caches[typ] = cache.NewLinearCache(typ, cache.WithLogger(cacheLog{log}))
	}
	f.mux = &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return r.GetTypeUrl() },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return r.GetTypeUrl() },
		Caches:        map[string]cache.Cache{},
	}
	for typ, c := range f.caches {
		f.mux.Caches[typ] = c
	}
	f.zones = &zonedEDS{base: f.caches[resourcev3.EndpointType], zones: map[string]*cache.LinearCache{}}
	f.mux.Caches[resourcev3.EndpointType] = f.zones
	st.OnCommit(f.committed)
	st.OnRestore(func(int64) { f.markAll() })
	return f
}

// Cache is what the ADS server serves from.
func (f *Feed) Cache() cache.Cache { return nackWaits{f.mux} }

func (f *Feed) committed(events []store.Event) {
	f.mu.Lock()
	for i := range events {
		if ev := &events[i]; ev.Kind == store.KindService || ev.Kind == store.KindEndpoint {
			f.dirty[meta.Key(ev.Namespace, ev.Service)] = true
		}
	}
	f.mu.Unlock()
	f.nudge()
}

func (f *Feed) markAll() {
	f.mu.Lock()
	f.all = true
	f.mu.Unlock()
	f.nudge()
}

func (f *Feed) nudge() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run rebuilds what commits touched until ctx ends.
func (f *Feed) Run(ctx context.Context) {
	f.nudge()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		if err := f.sync(); err != nil {
			f.log.Error("xds: rebuilding resources (the previous ones stay)", "err", err)
		}
	}
}

// sync rebuilds the marked services (all of them after a start or a
// restore) from one read of the store.
func (f *Feed) sync() error {
	f.mu.Lock()
	dirty, all := f.dirty, f.all
	f.dirty, f.all = map[string]bool{}, false
	f.mu.Unlock()
	r := f.st.Read()
	if all {
		for key := range f.have {
			dirty[key] = true // gone ones are deleted below
		}
		if err := eachService(r, func(key string) { dirty[key] = true }); err != nil {
			f.markAll()
			return err
		}
	}
	changes := map[string]*change{}
	zoneChanges := map[string]map[string]*change{} // by zone
	var failed error
	for key := range dirty {
		built, err := f.build(r, key)
		if err != nil {
			// Kept as it was, and tried again at the next commit.
			f.mu.Lock()
			f.dirty[key] = true
			f.mu.Unlock()
			failed = err
			continue
		}
		diff(changes, f.have[key], built)
		for zone := range f.zones.known() {
			if zoneChanges[zone] == nil {
				zoneChanges[zone] = map[string]*change{}
			}
			diffType(zoneChanges[zone], resourcev3.EndpointType, zoneView(f.have[key], zone), zoneView(built, zone))
		}
		if len(built.listeners)+len(built.clusters) == 0 {
			delete(f.have, key)
		} else {
			f.have[key] = built
		}
	}
	// Make before break: what a resource points at reaches the caches (and
	// the clients subscribed, in this order on an ADS stream) before it
	// does. New and changed endpoints and Clusters first, then the
	// Listeners that route to them; removals the other way round, the
	// Listener (no RPC routes there any more) before its Cluster and its
	// endpoints.
	for _, step := range []struct {
		typ    string
		remove bool
	}{
		{resourcev3.EndpointType, false}, {resourcev3.ClusterType, false}, {resourcev3.ListenerType, false},
		{resourcev3.ListenerType, true}, {resourcev3.ClusterType, true}, {resourcev3.EndpointType, true},
	} {
		err := apply(f.caches[step.typ], changes[step.typ], step.remove)
		if step.typ == resourcev3.EndpointType {
			for zone, zc := range zoneChanges {
				err = errors.Join(err, apply(f.zones.cache(zone), zc[step.typ], step.remove))
			}
		}
		if err != nil {
			// What the caches hold is no longer what have says: push
			// everything again.
			f.have = map[string]serviceResources{}
			f.markAll()
			return err
		}
	}
	f.addZones()
	return failed
}

// apply hands a cache one step's changes: updates, or removals.
func apply(c *cache.LinearCache, ch *change, remove bool) error {
	switch {
	case c == nil || ch == nil:
		return nil
	case !remove && len(ch.update) > 0:
		return c.UpdateResources(ch.update, nil)
	case remove && len(ch.remove) > 0:
		return c.UpdateResources(nil, ch.remove)
	}
	return nil
}

// zoneView is a service's assignments as a client in zone sees them.
func zoneView(r serviceResources, zone string) map[string]*endpointv3.ClusterLoadAssignment {
	out := make(map[string]*endpointv3.ClusterLoadAssignment, len(r.assignments))
	for name := range r.assignments {
		out[name] = r.assignmentIn(zone, name)
	}
	return out
}

// addZones gives every zone an endpoint is in a cache of its own, filled
// with what its clients see. A zone no endpoint is in needs none: its
// clients prefer nothing, and the default cache serves them.
func (f *Feed) addZones() {
	known := f.zones.known()
	for _, res := range f.have {
		for _, zone := range res.zones {
			if known[zone] {
				continue
			}
			known[zone] = true
			c := cache.NewLinearCache(resourcev3.EndpointType, cache.WithLogger(cacheLog{f.log}))
			all := map[string]types.Resource{}
			for _, r := range f.have {
				for name, cla := range zoneView(r, zone) {
					all[name] = cla
				}
			}
			c.SetResources(all)
			f.zones.add(zone, c)
		}
	}
}

func eachService(r *store.ReadTxn, f func(key string)) error {
	q := store.ListQuery{Namespace: meta.AllNamespaces, Limit: 1000}
	for {
		page, err := r.ListServices(q)
		if err != nil {
			return err
		}
		for _, svc := range page.Items {
			f(meta.Key(svc.GetNamespace(), svc.GetName()))
		}
		if page.Next == "" {
			return nil
		}
		q.After = page.Next
	}
}

func (f *Feed) build(r *store.ReadTxn, key string) (serviceResources, error) {
	ns, name := meta.SplitKey(key)
	svc, err := r.Service(ns, name)
	if errors.Is(err, store.ErrNotFound) {
		return serviceResources{}, nil
	}
	if err != nil {
		return serviceResources{}, err
	}
	eps, err := r.Endpoints(ns, name)
	if err != nil {
		return serviceResources{}, err
	}
	return buildService(svc, eps), nil
}

// change is one type's resources to update and delete.
type change struct {
	update map[string]types.Resource
	remove []string
}

// diff adds to changes what differs between a service's old and new
// resources: only those are pushed (a changed endpoint re-sends its
// ClusterLoadAssignment, not the Listener and Cluster beside it).
func diff(changes map[string]*change, old, cur serviceResources) {
	diffType(changes, resourcev3.ListenerType, old.listeners, cur.listeners)
	diffType(changes, resourcev3.ClusterType, old.clusters, cur.clusters)
	diffType(changes, resourcev3.EndpointType, old.assignments, cur.assignments)
}

func diffType[M proto.Message](changes map[string]*change, typ string, old, cur map[string]M) {
	c := changes[typ]
	if c == nil {
		c = &change{update: map[string]types.Resource{}}
		changes[typ] = c
	}
	for name, res := range cur {
		if prev, ok := old[name]; !ok || !proto.Equal(prev, res) {
			c.update[name] = res
		}
	}
	for name := range old {
		if _, ok := cur[name]; !ok {
			c.remove = append(c.remove, name)
		}
	}
}

// cacheLog drops go-control-plane's per-request debug and info lines and
// passes its warnings and errors on.
type cacheLog struct{ log *slog.Logger }

func (cacheLog) Debugf(string, ...any) {}
func (cacheLog) Infof(string, ...any)  {}
func (c cacheLog) Warnf(format string, args ...any) {
	c.log.Warn("xds cache: " + fmt.Sprintf(format, args...))
}
func (c cacheLog) Errorf(format string, args ...any) {
	c.log.Error("xds cache: " + fmt.Sprintf(format, args...))
}

// zonedEDS serves each client the ClusterLoadAssignments of its zone (the
// locality its bootstrap names): a cache per zone where some service
// prefers close endpoints, the default cache for every other client.
type zonedEDS struct {
	base *cache.LinearCache

	mu    sync.RWMutex // guards zones; the feed adds, requests read
	zones map[string]*cache.LinearCache
}

func (z *zonedEDS) known() map[string]bool {
	z.mu.RLock()
	defer z.mu.RUnlock()
	out := make(map[string]bool, len(z.zones))
	for zone := range z.zones {
		out[zone] = true
	}
	return out
}

func (z *zonedEDS) cache(zone string) *cache.LinearCache {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.zones[zone]
}

func (z *zonedEDS) add(zone string, c *cache.LinearCache) {
	z.mu.Lock()
	z.zones[zone] = c
	z.mu.Unlock()
}

// of is the cache for a client.
func (z *zonedEDS) of(node *corev3.Node) *cache.LinearCache {
	if c := z.cache(node.GetLocality().GetZone()); c != nil {
		return c
	}
	return z.base
}

func (z *zonedEDS) CreateWatch(r *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	return z.of(r.GetNode()).CreateWatch(r, sub, out)
}

func (z *zonedEDS) CreateDeltaWatch(r *cache.DeltaRequest, sub cache.Subscription, out chan cache.DeltaResponse) (func(), error) {
	return z.of(r.GetNode()).CreateDeltaWatch(r, sub, out)
}

func (z *zonedEDS) Fetch(ctx context.Context, r *cache.Request) (cache.Response, error) {
	return z.of(r.GetNode()).Fetch(ctx, r)
}
