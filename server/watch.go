// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/labels"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/internal/watch"
)

// watches serves WatchEndpoints and Watch: a snapshot from one read
// transaction, then the hub's events. Every server serves them from its
// own store, once it has caught up.
type watches struct {
	store  *store.Store
	hub    *watch.Hub
	node   node
	limits Limits
}

var eventTypes = [...]svcregv1.EventType{
	store.Added:    svcregv1.EventType_EVENT_TYPE_ADDED,
	store.Modified: svcregv1.EventType_EVENT_TYPE_MODIFIED,
	store.Deleted:  svcregv1.EventType_EVENT_TYPE_DELETED,
}

// ready waits (bounded) until this server has caught up: a watch opened
// on a server that just started gets a complete snapshot, or an error,
// never an empty one.
func (w *watches) ready(ctx context.Context, minRev int64) error {
	if err := checkMinRevision(minRev); err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, maxCatchUp)
	defer cancel()
	if err := w.node.WaitCaughtUp(waitCtx); err != nil {
		return err
	}
	// Read-your-writes: the snapshot holds the client's own last write.
	r := router{node: w.node, store: w.store}
	return r.caughtUpTo(ctx, minRev)
}

func (w *watches) WatchEndpoints(req *svcregv1.WatchEndpointsRequest, stream grpc.ServerStreamingServer[svcregv1.WatchEndpointsResponse]) error {
	ns, err := objectRef(store.KindService, req.GetNamespace(), req.GetService(), "service")
	if err != nil {
		return err
	}
	if err := w.ready(stream.Context(), req.GetMinRevision()); err != nil {
		return err
	}
	keys := []watch.Key{{Scope: watch.ScopeEndpoints, Namespace: ns, Service: req.GetService()}}
	sub, from, err := w.subscribe(keys, req.GetResourceVersion(), serviceFieldsClientsUse)
	if err != nil {
		return err
	}
	defer sub.Close()
	if req.GetResourceVersion() == 0 {
		if from, err = w.endpointsSnapshot(stream, ns, req.GetService()); err != nil {
			return err
		}
	}
	return w.pump(stream.Context(), sub, from,
		func(it watch.Item) error {
			// Every watcher of the service sends the same message: encode it
			// once (the filter never changes an endpoints event's type).
			b, err := it.Event.Encoded(func() ([]byte, error) {
				resp := &svcregv1.WatchEndpointsResponse{Type: eventTypes[it.Type], ResourceVersion: it.Event.Revision}
				switch obj := it.Event.Object().(type) {
				case *svcregv1.Endpoint:
					resp.Endpoint = obj
				case *svcregv1.Service:
					resp.Service = obj
				}
				return proto.Marshal(resp)
			})
			if err != nil {
				return err
			}
			return stream.SendMsg(encodedMessage(b))
		},
		func(rev int64) error {
			return stream.Send(&svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_BOOKMARK, ResourceVersion: rev})
		})
}

// endpointsSnapshot sends a service and its endpoints as ADDED events and
// the SYNCED marker, all read from one transaction, and returns its
// revision.
func (w *watches) endpointsSnapshot(stream grpc.ServerStreamingServer[svcregv1.WatchEndpointsResponse], ns, service string) (int64, error) {
	tx := w.store.Read()
	svc, err := tx.Service(ns, service)
	if err != nil && !apierror.IsNotFound(err) {
		return 0, err
	}
	eps, err := tx.Endpoints(ns, service)
	if err != nil {
		return 0, err
	}
	if svc != nil {
		if err := stream.Send(&svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED,
			ResourceVersion: svc.GetResourceVersion(), Service: svc}); err != nil {
			return 0, err
		}
	}
	for _, ep := range eps {
		if err := stream.Send(&svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED,
			ResourceVersion: ep.GetResourceVersion(), Endpoint: ep}); err != nil {
			return 0, err
		}
	}
	rev := tx.Revision()
	return rev, stream.Send(&svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_SYNCED,
		ResourceVersion: rev, ServiceExists: svc != nil})
}

// serviceFieldsClientsUse passes service changes an endpoints watcher needs
// (how to reach and balance the service) and drops the others (labels,
// annotations, selector: the selector's effect arrives as endpoint events).
func serviceFieldsClientsUse(ev *store.Event) (store.EventType, bool) {
	if ev.Kind != store.KindService || ev.Type != store.Modified {
		return ev.Type, true
	}
	return ev.Type, !proto.Equal(clientView(ev.Before.(*svcregv1.Service)), clientView(ev.After.(*svcregv1.Service)))
}

func clientView(s *svcregv1.Service) *svcregv1.Service {
	return &svcregv1.Service{
		Type: s.GetType(), ClusterIp: s.GetClusterIp(), Ports: s.GetPorts(), SessionAffinity: s.GetSessionAffinity(),
		SessionAffinityTimeoutSeconds: s.SessionAffinityTimeoutSeconds, ExternalName: s.GetExternalName(),
		PublishNotReadyAddresses: s.GetPublishNotReadyAddresses(), Scheduler: s.GetScheduler(), SchedulerOptions: s.GetSchedulerOptions(),
	}
}

func (w *watches) Watch(req *svcregv1.WatchRequest, stream grpc.ServerStreamingServer[svcregv1.WatchResponse]) error {
	q, err := listQuery(req.GetNamespace(), 0, "", req.GetLabelSelector(), w.limits.SelectorRequirements)
	if err != nil {
		return err
	}
	kinds, err := watchKinds(req.GetKinds())
	if err != nil {
		return err
	}
	if kinds.endpoints && !q.Selector.Empty() {
		return validation.ErrorList{validation.Invalid("label_selector", req.GetLabelSelector(), "does not apply to endpoints, which have no labels: watch them without one")}
	}
	if err := w.ready(stream.Context(), req.GetMinRevision()); err != nil {
		return err
	}
	var keys []watch.Key
	if kinds.services {
		keys = append(keys, watch.Key{Scope: watch.ScopeServices, Namespace: q.Namespace})
	}
	if kinds.instances {
		keys = append(keys, watch.Key{Scope: watch.ScopeInstances, Namespace: q.Namespace})
	}
	if kinds.endpoints {
		keys = append(keys, watch.Key{Scope: watch.ScopeAllEndpoints, Namespace: q.Namespace})
	}
	filter := selectorFilter(q.Selector)
	if q.Namespace == meta.AllNamespaces {
		q.Visible = visibleTo(stream.Context())
		filter = namespaceFilter(q.Visible, filter)
	}
	sub, from, err := w.subscribe(keys, req.GetResourceVersion(), filter)
	if err != nil {
		return err
	}
	defer sub.Close()
	if req.GetResourceVersion() == 0 {
		if from, err = w.objectsSnapshot(stream, q, kinds); err != nil {
			return err
		}
	}
	return w.pump(stream.Context(), sub, from,
		func(it watch.Item) error {
			resp := &svcregv1.WatchResponse{Type: eventTypes[it.Type], ResourceVersion: it.Event.Revision}
			switch obj := it.Event.Object().(type) {
			case *svcregv1.Service:
				resp.Service = obj
			case *svcregv1.Instance:
				resp.Instance = obj
			case *svcregv1.Endpoint:
				resp.Endpoint = obj
			}
			return stream.Send(resp)
		},
		func(rev int64) error {
			return stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_BOOKMARK, ResourceVersion: rev})
		})
}

// kindSet is what a Watch streams.
type kindSet struct{ services, instances, endpoints bool }

// watchKinds reads a Watch's kinds: none means services and instances.
func watchKinds(kinds []svcregv1.ObjectKind) (kindSet, error) {
	if len(kinds) == 0 {
		return kindSet{services: true, instances: true}, nil
	}
	var set kindSet
	for i, o := range kinds {
		k, _ := meta.KindOfProto(o)
		switch k {
		case meta.KindService:
			set.services = true
		case meta.KindInstance:
			set.instances = true
		case meta.KindEndpoint:
			set.endpoints = true
		default:
			return kindSet{}, validation.ErrorList{validation.NotSupported(validation.Path("kinds").Index(i), o.String(),
				[]string{"OBJECT_KIND_SERVICE", "OBJECT_KIND_INSTANCE", "OBJECT_KIND_ENDPOINT"})}
		}
	}
	return set, nil
}

// objectsSnapshot sends the matching objects as ADDED events and the
// SYNCED marker, from one transaction.
func (w *watches) objectsSnapshot(stream grpc.ServerStreamingServer[svcregv1.WatchResponse], q store.ListQuery, kinds kindSet) (int64, error) {
	tx := w.store.Read()
	q.Limit = 0
	if kinds.services {
		page, err := tx.ListServices(q)
		if err != nil {
			return 0, err
		}
		for _, s := range page.Items {
			if err := stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED, ResourceVersion: s.GetResourceVersion(), Service: s}); err != nil {
				return 0, err
			}
		}
	}
	if kinds.instances {
		page, err := tx.ListInstances(q)
		if err != nil {
			return 0, err
		}
		for _, i := range page.Items {
			if err := stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED, ResourceVersion: i.GetResourceVersion(), Instance: i}); err != nil {
				return 0, err
			}
		}
	}
	if kinds.endpoints {
		var sendErr error
		if err := tx.EachEndpointIn(q.Namespace, q.Visible, func(ep *svcregv1.Endpoint) bool {
			sendErr = stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED, ResourceVersion: ep.GetResourceVersion(), Endpoint: ep})
			return sendErr == nil
		}); err != nil {
			return 0, err
		}
		if sendErr != nil {
			return 0, sendErr
		}
	}
	rev := tx.Revision()
	return rev, stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_SYNCED, ResourceVersion: rev})
}

// selectorFilter gives a label watch Kubernetes' semantics: an object that
// starts matching is ADDED, one that stops matching is DELETED.
func selectorFilter(sel labels.Selector) watch.Filter {
	if sel.Empty() {
		return nil
	}
	matches := func(m proto.Message) bool {
		switch o := m.(type) {
		case *svcregv1.Service:
			return sel.Matches(o.GetLabels())
		case *svcregv1.Instance:
			return sel.Matches(o.GetLabels())
		}
		return false
	}
	return func(ev *store.Event) (store.EventType, bool) {
		before := ev.Before != nil && matches(ev.Before)
		after := ev.After != nil && matches(ev.After)
		switch {
		case before && after:
			return store.Modified, true
		case after:
			return store.Added, true
		case before:
			return store.Deleted, true
		}
		return 0, false
	}
}

// namespaceFilter limits a watch across namespaces to the visible ones
// (nil: all), before next.
func namespaceFilter(visible func(string) bool, next watch.Filter) watch.Filter {
	if visible == nil {
		return next
	}
	return func(ev *store.Event) (store.EventType, bool) {
		if !visible(ev.Namespace) {
			return 0, false
		}
		if next == nil {
			return ev.Type, true
		}
		return next(ev)
	}
}

// subscribe registers a watcher: live for a fresh watch (the caller sends a
// snapshot and skips events up to its revision), or resuming after rv.
func (w *watches) subscribe(keys []watch.Key, rv int64, filter watch.Filter) (*watch.Subscriber, int64, error) {
	switch {
	case rv < 0:
		return nil, 0, validation.ErrorList{validation.Invalid("resource_version", rv, "must not be negative")}
	case rv == 0:
		sub, err := w.hub.Subscribe(keys, watch.Live, filter)
		return sub, 0, err
	}
	if rv > w.hub.Revision() {
		// A follower may lag behind the server the client saw rv on: wait
		// a little for it to catch up, never going back in time. The
		// leader cannot lag: rv is from the future.
		wait := maxCatchUp
		if w.node.IsLeader() {
			wait = 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		err := w.store.WaitRevision(ctx, rv)
		cancel()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %d is after this server's revision %d", watch.ErrFuture, rv, w.store.Revision())
		}
	}
	sub, err := w.hub.Subscribe(keys, rv, filter)
	return sub, rv, err
}

// pump sends a subscriber's events after revision from, and the bookmarks
// the hub asks for, until the stream ends or the subscription does (the
// hub closes every subscription when the server stops).
func (w *watches) pump(ctx context.Context, sub *watch.Subscriber, from int64, send func(watch.Item) error, bookmark func(int64) error) error {
	last := from
	for {
		items, bm, err := sub.Wait(ctx)
		if err != nil {
			return fmt.Errorf("%w (resume from revision %d)", err, last)
		}
		for _, it := range items {
			if it.Event.Revision <= from {
				continue // already in the snapshot
			}
			if err := send(it); err != nil {
				return err
			}
			last = it.Event.Revision
		}
		if bm > 0 {
			last = max(last, bm)
			if err := bookmark(last); err != nil {
				return err
			}
		}
	}
}
