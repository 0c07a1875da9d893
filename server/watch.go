package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/labels"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/internal/watch"
)

var eventTypes = [...]svcregv1.EventType{
	store.Added:    svcregv1.EventType_EVENT_TYPE_ADDED,
	store.Modified: svcregv1.EventType_EVENT_TYPE_MODIFIED,
	store.Deleted:  svcregv1.EventType_EVENT_TYPE_DELETED,
}

func (r *registry) WatchEndpoints(req *svcregv1.WatchEndpointsRequest, stream grpc.ServerStreamingServer[svcregv1.WatchEndpointsResponse]) error {
	ns, err := objectRef(req.GetNamespace(), req.GetService(), "service")
	if err != nil {
		return err
	}
	keys := []watch.Key{{Scope: watch.ScopeEndpoints, Namespace: ns, Service: req.GetService()}}
	sub, from, err := r.subscribe(keys, req.GetResourceVersion(), serviceFieldsClientsUse)
	if err != nil {
		return err
	}
	defer sub.Close()
	if req.GetResourceVersion() == 0 {
		view, err := r.store.ServiceView(ns, req.GetService())
		if err != nil {
			return err
		}
		if view.Service != nil {
			if err := stream.Send(&svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED,
				ResourceVersion: view.Service.GetResourceVersion(), Service: view.Service}); err != nil {
				return err
			}
		}
		for _, ep := range view.Endpoints {
			if err := stream.Send(&svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED,
				ResourceVersion: ep.GetResourceVersion(), Endpoint: ep}); err != nil {
				return err
			}
		}
		if err := stream.Send(&svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_SYNCED,
			ResourceVersion: view.Revision, ServiceExists: view.Service != nil}); err != nil {
			return err
		}
		from = view.Revision
	}
	return r.pump(stream.Context(), sub, from,
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

func (r *registry) Watch(req *svcregv1.WatchRequest, stream grpc.ServerStreamingServer[svcregv1.WatchResponse]) error {
	q, err := listQuery(req.GetNamespace(), 0, "", req.GetLabelSelector())
	if err != nil {
		return err
	}
	services, instances := len(req.GetKinds()) == 0, len(req.GetKinds()) == 0
	for i, k := range req.GetKinds() {
		switch k {
		case svcregv1.ObjectKind_OBJECT_KIND_SERVICE:
			services = true
		case svcregv1.ObjectKind_OBJECT_KIND_INSTANCE:
			instances = true
		default:
			return validation.ErrorList{validation.NotSupported(validation.Path("kinds").Index(i), k.String(),
				[]string{"OBJECT_KIND_SERVICE", "OBJECT_KIND_INSTANCE"})}
		}
	}
	var keys []watch.Key
	if services {
		keys = append(keys, watch.Key{Scope: watch.ScopeServices, Namespace: q.Namespace})
	}
	if instances {
		keys = append(keys, watch.Key{Scope: watch.ScopeInstances, Namespace: q.Namespace})
	}
	sub, from, err := r.subscribe(keys, req.GetResourceVersion(), selectorFilter(q.Selector))
	if err != nil {
		return err
	}
	defer sub.Close()
	if req.GetResourceVersion() == 0 {
		objs, err := r.store.Objects(q.Namespace, q.Selector, services, instances)
		if err != nil {
			return err
		}
		for _, s := range objs.Services {
			if err := stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED, ResourceVersion: s.GetResourceVersion(), Service: s}); err != nil {
				return err
			}
		}
		for _, i := range objs.Instances {
			if err := stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED, ResourceVersion: i.GetResourceVersion(), Instance: i}); err != nil {
				return err
			}
		}
		if err := stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_SYNCED, ResourceVersion: objs.Revision}); err != nil {
			return err
		}
		from = objs.Revision
	}
	return r.pump(stream.Context(), sub, from,
		func(it watch.Item) error {
			resp := &svcregv1.WatchResponse{Type: eventTypes[it.Type], ResourceVersion: it.Event.Revision}
			switch obj := it.Event.Object().(type) {
			case *svcregv1.Service:
				resp.Service = obj
			case *svcregv1.Instance:
				resp.Instance = obj
			}
			return stream.Send(resp)
		},
		func(rev int64) error {
			return stream.Send(&svcregv1.WatchResponse{Type: svcregv1.EventType_EVENT_TYPE_BOOKMARK, ResourceVersion: rev})
		})
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

// subscribe registers a watcher: live for a fresh watch (the caller sends a
// snapshot and skips events up to its revision), or resuming after rv.
func (r *registry) subscribe(keys []watch.Key, rv int64, filter watch.Filter) (*watch.Subscriber, int64, error) {
	switch {
	case rv < 0:
		return nil, 0, validation.ErrorList{validation.Invalid("resource_version", rv, "must not be negative")}
	case rv == 0:
		sub, err := r.hub.Subscribe(keys, watch.Live, filter)
		return sub, 0, err
	}
	if current := max(r.hub.Revision(), r.store.Revision()); rv > current {
		// A follower may lag behind the server the client saw rv on: wait
		// a little for it to catch up, never going back in time. The
		// leader cannot lag: rv is from the future.
		wait := maxCatchUp
		if r.node.IsLeader() {
			wait = 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		err := r.store.WaitRevision(ctx, rv)
		cancel()
		if err != nil {
			return nil, 0, validation.ErrorList{validation.Invalid("resource_version", rv,
				fmt.Sprintf("is after the current revision %d", r.store.Revision()))}
		}
	}
	sub, err := r.hub.Subscribe(keys, rv, filter)
	return sub, rv, err
}

// pump sends a subscriber's events after revision from, and the bookmarks
// the hub asks for, until the stream ends or the subscription does (the
// hub closes every subscription when the server stops).
func (r *registry) pump(ctx context.Context, sub *watch.Subscriber, from int64, send func(watch.Item) error, bookmark func(int64) error) error {
	last := from
	for {
		items, bm, err := sub.Wait(ctx)
		if err != nil {
			return watchError(err, last)
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

func watchError(err error, last int64) error {
	switch {
	case err == watch.ErrOverflow:
		return fmt.Errorf("%w: resume from revision %d", err, last)
	case err == watch.ErrClosed:
		return status.Errorf(codes.Unavailable, "the registry is shutting down; resume from revision %d", last)
	case err == context.Canceled:
		return status.Error(codes.Canceled, "the watch was canceled")
	}
	return err
}
