// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

//lint:file-ignore SA1019 v1 Endpoints, deprecated in Kubernetes 1.33, is served on purpose: kube-proxy's and CoreDNS's older releases and many tools still read it

package kubeapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kwatch "k8s.io/apimachinery/pkg/watch"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/watch"
)

// errExpired ends a watch whose revision the cache no longer holds
// (Kubernetes' 410 Gone, reason Expired: the client lists again).
var errExpired = errors.New("too old resource version")

// Event is one change of a Kubernetes object, shared by every watcher.
type Event struct {
	Type      kwatch.EventType
	Resource  *resource
	Namespace string
	Revision  int64
	Object    metav1.Object
	// Old is the object before a MODIFIED event: a label-selected watch
	// turns a change that starts or stops matching into ADDED or DELETED.
	Old metav1.Object
	// encoded is Object's encoding in JSON [0] and protobuf [1], made by
	// the first watcher that sends it.
	encoded [2]encoding
}

// encoding is bytes made once, on first use, by whoever needs them first.
type encoding struct {
	once sync.Once
	raw  []byte
	err  error
}

func (e *encoding) get(make func() ([]byte, error)) ([]byte, error) {
	e.once.Do(func() { e.raw, e.err = make() })
	return e.raw, e.err
}

// published is what the cache serves of one service: the objects
// Kubernetes' controllers would keep for it.
type published struct {
	service   *corev1.Service
	endpoints *corev1.Endpoints // nil: none
	slices    []*discoveryv1.EndpointSlice
}

// source is what the feeder keeps of one service: the registry's rows.
type source struct {
	svc *svcregv1.Service
	eps map[string]*svcregv1.Endpoint
}

// namespace is a namespace as the cache serves it: it exists while it
// holds a service (the default one always).
type namespace struct {
	services int
	object   *corev1.Namespace
}

// Cache is the Kubernetes objects of the registry's services, kept by one
// goroutine that follows the watch hub, and the history of their changes:
// the counterpart of kube-apiserver's watch cache. Every list reads it,
// and every watch reads its history, so a thousand informers cost one
// derivation of each change, not a thousand; a watcher that falls behind
// the history gets 410 and lists again, and never slows the writer.
type Cache struct {
	store *store.Store
	hub   *watch.Hub
	log   *slog.Logger
	limit int // events kept in the history

	serviceCIDR *networkingv1.ServiceCIDR // fixed at start
	now         func() time.Time          // stamps endpoints.kubernetes.io/last-change-trigger-time

	sources map[string]*source // the feeder's own; namespace/name
	hosts   map[string]*host   // the feeder's own; instances per node

	mu         sync.RWMutex
	rev        int64 // every change up to it is in objects and history
	objects    map[string]*published
	namespaces map[string]*namespace
	nodes      map[string]*corev1.Node
	history    []*Event // in revision order
	oldest     int64    // history holds every event after it
	changed    chan struct{}
	loaded     bool  // the first load is done
	err        error // the cache stopped

	// The cache starts with the API's first request, so that a registry
	// whose Kubernetes API nobody reads keeps no copy of its objects.
	wanted     chan struct{}
	wantedOnce sync.Once
}

// NewCache returns a cache of st's services following hub; Run fills it.
// serviceCIDR is where cluster IPs come from.
func NewCache(st *store.Store, hub *watch.Hub, log *slog.Logger, history int, serviceCIDR string, now func() time.Time) *Cache {
	if history <= 0 {
		history = 10000
	}
	c := &Cache{store: st, hub: hub, log: log, limit: history, changed: make(chan struct{}), wanted: make(chan struct{}), now: now}
	if serviceCIDR != "" {
		c.serviceCIDR = &networkingv1.ServiceCIDR{ObjectMeta: objectMeta("", "kubernetes", "", 1, nil, nil),
			Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{serviceCIDR}},
			Status: networkingv1.ServiceCIDRStatus{Conditions: []metav1.Condition{{Type: networkingv1.ServiceCIDRConditionReady,
				Status: metav1.ConditionTrue, Reason: "svcreg", Message: "svcreg's --service-cidr"}}}}
	}
	return c
}

// want starts the cache, once.
func (c *Cache) want() { c.wantedOnce.Do(func() { close(c.wanted) }) }

// Run keeps the cache until ctx ends or the hub closes; when the hub cuts
// it off (it fell behind, or the state was replaced) it loads the store
// again, and watchers from before that list again.
func (c *Cache) Run(ctx context.Context) {
	select {
	case <-c.wanted:
	case <-ctx.Done():
		c.stop(fmt.Errorf("the registry is shutting down: %w", watch.ErrClosed))
		return
	}
	for {
		err := c.follow(ctx)
		if ctx.Err() != nil || errors.Is(err, watch.ErrClosed) {
			c.stop(fmt.Errorf("the registry is shutting down: %w", watch.ErrClosed))
			return
		}
		c.log.Warn("Kubernetes API cache lost the watch hub; loading the registry again", "err", err)
	}
}

func (c *Cache) stop(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	close(c.changed)
	c.changed = make(chan struct{})
}

var feedKeys = []watch.Key{
	{Scope: watch.ScopeServices, Namespace: meta.AllNamespaces},
	{Scope: watch.ScopeAllEndpoints, Namespace: meta.AllNamespaces},
	{Scope: watch.ScopeInstances, Namespace: meta.AllNamespaces},
}

func (c *Cache) follow(ctx context.Context) error {
	sub, err := c.hub.Subscribe(feedKeys, watch.Live, nil)
	if err != nil {
		return err
	}
	defer sub.Close()
	from, err := c.load()
	if err != nil {
		return err
	}
	var pending []*watch.Event
	for {
		// Whole revisions only: every event at or below d was queued before
		// Next (docs/kubernetes.md, "The cache").
		round := c.hub.AfterRound()
		d := c.hub.Dispatched()
		items, _, err := sub.Next()
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.Event.Revision > from {
				pending = append(pending, it.Event)
			}
		}
		n := sort.Search(len(pending), func(i int) bool { return pending[i].Revision > d })
		for i := 0; i < n; {
			j := i
			for j < n && pending[j].Revision == pending[i].Revision {
				j++
			}
			c.apply(pending[i].Revision, pending[i:j])
			i = j
		}
		pending = append(pending[:0], pending[n:]...)
		c.advance(d)
		select {
		case <-sub.Ready():
		case <-round:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// load replaces the cache with the store's state now, and returns its
// revision. Watchers positioned before it are expired.
func (c *Cache) load() (int64, error) {
	tx := c.store.Read()
	page, err := tx.ListServices(store.ListQuery{Namespace: meta.AllNamespaces})
	if err != nil {
		return 0, err
	}
	sources := make(map[string]*source, len(page.Items))
	for _, svc := range page.Items {
		sources[meta.Key(svc.GetNamespace(), svc.GetName())] = &source{svc: svc, eps: map[string]*svcregv1.Endpoint{}}
	}
	if err := tx.EachEndpointIn(meta.AllNamespaces, nil, func(ep *svcregv1.Endpoint) bool {
		key := meta.Key(ep.GetNamespace(), ep.GetService())
		s := sources[key]
		if s == nil {
			s = &source{eps: map[string]*svcregv1.Endpoint{}}
			sources[key] = s
		}
		s.eps[ep.GetInstance()] = ep
		return true
	}); err != nil {
		return 0, err
	}
	instances, err := tx.ListInstances(store.ListQuery{Namespace: meta.AllNamespaces})
	if err != nil {
		return 0, err
	}
	hosts := map[string]*host{}
	for _, inst := range instances.Items {
		countInstance(hosts, inst, +1)
	}
	rev := tx.Revision()
	nodes := make(map[string]*corev1.Node, len(hosts))
	for name, h := range hosts {
		nodes[name] = Node(name, h.zone(), rev)
	}
	objects := make(map[string]*published, len(sources))
	namespaces := map[string]*namespace{meta.DefaultNamespace: {object: Namespace(meta.DefaultNamespace, 1)}}
	for key, s := range sources {
		if s.svc == nil {
			continue
		}
		objects[key] = s.publish(0)
		ns := namespaces[s.svc.GetNamespace()]
		if ns == nil {
			ns = &namespace{object: Namespace(s.svc.GetNamespace(), s.svc.GetResourceVersion())}
			namespaces[s.svc.GetNamespace()] = ns
		}
		ns.services++
	}
	c.sources, c.hosts = sources, hosts
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rev, c.oldest, c.history, c.loaded = rev, rev, nil, true
	c.objects, c.namespaces, c.nodes = objects, namespaces, nodes
	c.broadcastLocked()
	return rev, nil
}

// publish derives a service's objects; at is the revision they changed at
// (0: each its own parts' newest).
func (s *source) publish(at int64) *published {
	eps := make([]*svcregv1.Endpoint, 0, len(s.eps))
	for _, ep := range s.eps {
		eps = append(eps, ep)
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].GetInstance() < eps[j].GetInstance() })
	p := &published{service: Service(s.svc)}
	if HasEndpoints(s.svc, eps) {
		p.endpoints = Endpoints(s.svc, eps, at)
		p.slices = EndpointSlices(s.svc, eps, at)
	}
	return p
}

// apply folds one revision's events into the sources, derives the
// services they touched again, and publishes what changed.
func (c *Cache) apply(rev int64, evs []*watch.Event) {
	touched, hostsTouched := map[string]bool{}, map[string]bool{}
	for _, ev := range evs {
		if ev.Kind == store.KindInstance {
			for _, m := range []any{ev.Before, ev.After} {
				if inst, ok := m.(*svcregv1.Instance); ok && inst.GetNode() != "" {
					hostsTouched[inst.GetNode()] = true
				}
			}
			if inst, ok := ev.Before.(*svcregv1.Instance); ok {
				countInstance(c.hosts, inst, -1)
			}
			if inst, ok := ev.After.(*svcregv1.Instance); ok {
				countInstance(c.hosts, inst, +1)
			}
			continue
		}
		key := meta.Key(ev.Namespace, ev.Service)
		s := c.sources[key]
		if s == nil {
			s = &source{eps: map[string]*svcregv1.Endpoint{}}
			c.sources[key] = s
		}
		touched[key] = true
		switch obj := ev.After.(type) {
		case *svcregv1.Service:
			s.svc = obj
		case *svcregv1.Endpoint:
			s.eps[ev.Name] = obj
		case nil:
			if ev.Kind == store.KindService {
				s.svc = nil
			} else {
				delete(s.eps, ev.Name)
			}
		}
	}
	next := make(map[string]*published, len(touched))
	for key := range touched {
		s := c.sources[key]
		switch {
		case s.svc != nil:
			next[key] = s.publish(rev)
		case len(s.eps) == 0:
			delete(c.sources, key)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(touched))
	for key := range touched {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		c.replaceLocked(key, rev, c.objects[key], next[key])
	}
	for _, name := range slices.Sorted(maps.Keys(hostsTouched)) {
		c.nodeLocked(name, rev)
	}
	c.rev = rev
	c.trimLocked()
	c.broadcastLocked()
}

// replaceLocked publishes a service's new objects (nil: it was deleted)
// and records the events between old and new. Objects that did not change
// keep their resourceVersion.
func (c *Cache) replaceLocked(key string, rev int64, old, new *published) {
	if new == nil {
		if old == nil {
			return
		}
		delete(c.objects, key)
		c.recordLocked(kwatch.Deleted, rev, &services, deleted(old.service, rev), nil)
		if old.endpoints != nil {
			c.recordLocked(kwatch.Deleted, rev, &endpoints, deleted(old.endpoints, rev), nil)
		}
		for _, s := range old.slices {
			c.recordLocked(kwatch.Deleted, rev, &endpointSlices, deleted(s, rev), nil)
		}
		c.namespaceLocked(old.service.Namespace, rev, -1)
		return
	}
	c.objects[key] = new
	if old == nil {
		c.namespaceLocked(new.service.Namespace, rev, +1)
		c.recordLocked(kwatch.Added, rev, &services, new.service, nil)
	} else if new.service.ResourceVersion != old.service.ResourceVersion {
		c.recordLocked(kwatch.Modified, rev, &services, new.service, old.service)
	}
	var oldEndpoints *corev1.Endpoints
	var oldSlices []*discoveryv1.EndpointSlice
	if old != nil {
		oldEndpoints, oldSlices = old.endpoints, old.slices
	}
	switch {
	case new.endpoints == nil && oldEndpoints != nil:
		c.recordLocked(kwatch.Deleted, rev, &endpoints, deleted(oldEndpoints, rev), nil)
	case new.endpoints != nil && oldEndpoints == nil:
		c.recordLocked(kwatch.Added, rev, &endpoints, c.stamp(new.endpoints), nil)
	case new.endpoints != nil:
		if same(oldEndpoints, new.endpoints) {
			new.endpoints = oldEndpoints
		} else {
			c.recordLocked(kwatch.Modified, rev, &endpoints, c.stamp(new.endpoints), oldEndpoints)
		}
	}
	byName := make(map[string]*discoveryv1.EndpointSlice, len(oldSlices))
	for _, s := range oldSlices {
		byName[s.Name] = s
	}
	for i, s := range new.slices {
		prev, ok := byName[s.Name]
		delete(byName, s.Name)
		switch {
		case !ok:
			c.recordLocked(kwatch.Added, rev, &endpointSlices, c.stamp(s), nil)
		case same(prev, s):
			new.slices[i] = prev
		default:
			c.recordLocked(kwatch.Modified, rev, &endpointSlices, c.stamp(s), prev)
		}
	}
	for _, s := range oldSlices {
		if _, gone := byName[s.Name]; gone {
			c.recordLocked(kwatch.Deleted, rev, &endpointSlices, deleted(s, rev), nil)
		}
	}
}

// same reports whether two versions of an object differ only in their
// resourceVersion and trigger time.
func same[T runtime.Object](old, new T) bool {
	a, b := any(old).(metav1.Object), any(new).(metav1.Object)
	rv, annotations := b.GetResourceVersion(), b.GetAnnotations()
	b.SetResourceVersion(a.GetResourceVersion())
	b.SetAnnotations(withAnnotation(annotations, triggerTime, a.GetAnnotations()[triggerTime]))
	eq := equality.Semantic.DeepEqual(old, new)
	b.SetResourceVersion(rv)
	b.SetAnnotations(annotations)
	return eq
}

// triggerTime is when the change an Endpoints or EndpointSlice shows
// happened; kube-proxy's network programming latency is measured from it.
const triggerTime = corev1.EndpointsLastChangeTriggerTime

// stamp sets an object's trigger time to now: when the cache derived the
// change, within a dispatch of its commit on this server (svcreg's rows
// carry no time of their own).
func (c *Cache) stamp(o metav1.Object) metav1.Object {
	if c.now != nil {
		o.SetAnnotations(withAnnotation(o.GetAnnotations(), triggerTime, c.now().UTC().Format(time.RFC3339Nano)))
	}
	return o
}

// withAnnotation is m with key set to v (removed when v is empty), a
// copy; nil when empty.
func withAnnotation(m map[string]string, key, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	if v == "" {
		delete(out, key)
	} else {
		out[key] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// deleted is an object's last state as its DELETED event carries it, at
// the revision of the deletion.
func deleted[T interface {
	metav1.Object
	DeepCopyObject() runtime.Object
}](obj T, rev int64) metav1.Object {
	out := obj.DeepCopyObject().(metav1.Object)
	out.SetResourceVersion(fmt.Sprint(rev))
	return out
}

// namespaceLocked counts a service in or out of its namespace; the first
// adds the namespace, the last removes it (never the default one).
func (c *Cache) namespaceLocked(name string, rev int64, delta int) {
	ns := c.namespaces[name]
	if ns == nil {
		ns = &namespace{object: Namespace(name, rev)}
		c.namespaces[name] = ns
		c.recordLocked(kwatch.Added, rev, &namespaces, ns.object, nil)
	}
	ns.services += delta
	if ns.services <= 0 && name != meta.DefaultNamespace {
		delete(c.namespaces, name)
		c.recordLocked(kwatch.Deleted, rev, &namespaces, deleted(ns.object, rev), nil)
	}
}

// host is what the feeder knows of a node: its instances, by zone.
type host struct{ zones map[string]int }

// zone is the node's zone: its instances' (the most common, when they
// disagree; ties to the first by name).
func (h *host) zone() string {
	best, n := "", 0
	for _, z := range slices.Sorted(maps.Keys(h.zones)) {
		if h.zones[z] > n {
			best, n = z, h.zones[z]
		}
	}
	return best
}

func countInstance(hosts map[string]*host, inst *svcregv1.Instance, delta int) {
	name := inst.GetNode()
	if name == "" {
		return
	}
	h := hosts[name]
	if h == nil {
		h = &host{zones: map[string]int{}}
		hosts[name] = h
	}
	h.zones[inst.GetZone()] += delta
	if h.zones[inst.GetZone()] <= 0 {
		delete(h.zones, inst.GetZone())
	}
	if len(h.zones) == 0 {
		delete(hosts, name)
	}
}

// nodeLocked publishes a node's change: it exists while an instance names
// it, labelled with its zone.
func (c *Cache) nodeLocked(name string, rev int64) {
	old := c.nodes[name]
	h := c.hosts[name]
	switch {
	case h == nil && old != nil:
		delete(c.nodes, name)
		c.recordLocked(kwatch.Deleted, rev, &nodes, deleted(old, rev), nil)
	case h != nil && old == nil:
		c.nodes[name] = Node(name, h.zone(), rev)
		c.recordLocked(kwatch.Added, rev, &nodes, c.nodes[name], nil)
	case h != nil && old.Labels[corev1.LabelTopologyZone] != h.zone():
		c.nodes[name] = Node(name, h.zone(), rev)
		c.recordLocked(kwatch.Modified, rev, &nodes, c.nodes[name], old)
	}
}

func (c *Cache) recordLocked(t kwatch.EventType, rev int64, r *resource, obj, old metav1.Object) {
	c.history = append(c.history, &Event{Type: t, Resource: r, Namespace: obj.GetNamespace(), Revision: rev, Object: obj, Old: old})
}

// trimLocked keeps the history within its limit, dropping whole
// revisions from the front.
func (c *Cache) trimLocked() {
	if len(c.history) <= c.limit {
		return
	}
	cut := len(c.history) - c.limit/2
	last := c.history[cut-1].Revision
	for cut < len(c.history) && c.history[cut].Revision == last {
		cut++
	}
	c.oldest = last
	c.history = append([]*Event(nil), c.history[cut:]...)
}

// advance moves the cache's revision to rev when the hub has dispatched
// it and no event of the cache's is pending below it (a revision with no
// service or endpoint change).
func (c *Cache) advance(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev > c.rev {
		c.rev = rev
		c.broadcastLocked()
	}
}

func (c *Cache) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// WaitFor waits until the cache has loaded and holds every change up to
// rev (a consistent read: rev is the store's revision when the request
// came); the first call starts the cache.
func (c *Cache) WaitFor(ctx context.Context, rev int64) error {
	c.want()
	for {
		c.mu.RLock()
		now, changed, err, loaded := c.rev, c.changed, c.err, c.loaded
		c.mu.RUnlock()
		if err != nil {
			return err
		}
		if loaded && now >= rev {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("the Kubernetes API cache has not reached revision %d (it is at %d): %w", rev, now, ctx.Err())
		}
	}
}

// view is a consistent read of the cache: fn runs under its read lock.
func (c *Cache) view(fn func(rev int64)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(c.rev)
}

// since returns the events after rev (at most max), the cache's revision,
// and a channel closed at its next change; errExpired when the history
// no longer reaches back to rev.
func (c *Cache) since(rev int64, max int) ([]*Event, int64, <-chan struct{}, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.err != nil {
		return nil, 0, nil, c.err
	}
	if rev < c.oldest {
		return nil, 0, nil, fmt.Errorf("%w: %d is older than the oldest revision this server keeps, %d; list again", errExpired, rev, c.oldest+1)
	}
	i := sort.Search(len(c.history), func(i int) bool { return c.history[i].Revision > rev })
	j, now := min(len(c.history), i+max), c.rev
	if j < len(c.history) {
		// Whole revisions only: stop before the one cut, unless it is the
		// first, which is then taken whole.
		r := c.history[j].Revision
		for j > i && c.history[j-1].Revision == r {
			j--
		}
		if j == i {
			for j < len(c.history) && c.history[j].Revision == r {
				j++
			}
		}
		now = c.history[j-1].Revision
	}
	return append([]*Event(nil), c.history[i:j]...), now, c.changed, nil
}
