// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package endpointwatch follows a service's endpoints on a registry: the
// resuming WatchEndpoints stream and the consistent view built from it,
// shared by the client SDK and the resolver.
package endpointwatch

import (
	"context"
	"iter"
	"maps"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/reason"
)

// Backoff is an exponential retry delay with full jitter, bounded.
type Backoff struct {
	Base, Max time.Duration
	attempt   int
}

// NewBackoff starts at 50 ms and caps at 3 s.
func NewBackoff() *Backoff { return &Backoff{Base: 50 * time.Millisecond, Max: 3 * time.Second} }

// Next is the next delay.
func (b *Backoff) Next() time.Duration {
	d := b.Base << min(b.attempt, 16)
	b.attempt++
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	return d/2 + rand.N(d/2+1)
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Event is one event, marked Relist when it begins a new snapshot, and
// Restarted when that snapshot follows a registry restart (the registry's
// revision went back: it lost its state, or restored an older one).
type Event struct {
	*svcregv1.WatchEndpointsResponse
	Relist    bool
	Restarted bool
}

// Watch follows one service. Its zero value is not usable: set Client,
// Namespace and Service.
type Watch struct {
	Client             svcregv1grpc.RegistryServiceClient
	Namespace, Service string
	// OnError, if set, hears of the failures the watch retries.
	OnError func(error)
	// MinRevision, if set, is the revision the first snapshot must hold
	// (read-your-writes: the client's own last write, which a follower may
	// not have applied yet). A server that does not reach it in time (one
	// restarted without its state) is then asked for what it has.
	MinRevision func() int64

	resync chan struct{}
}

// New returns a watch of a service.
func New(cl svcregv1grpc.RegistryServiceClient, namespace, service string, onError func(error)) *Watch {
	return &Watch{Client: cl, Namespace: namespace, Service: service, OnError: onError, resync: make(chan struct{}, 1)}
}

// Resync asks the watch to open a new stream now, resuming from its last
// revision (as after a failure, without the backoff): a client that
// suspects its stream is stuck (gRPC's ResolveNow) gets a fresh one.
// Requests in a burst coalesce into one.
func (w *Watch) Resync() {
	select {
	case w.resync <- struct{}{}:
	default:
	}
}

// Events is the resuming WatchEndpoints stream. Resuming needs a revision
// the stream vouched for: a SYNCED or BOOKMARK marker, or a live event
// after them; a snapshot's ADDED events carry their objects' older
// revisions and do not count. It ends when ctx does, or with an error
// retrying cannot fix.
func (w *Watch) Events(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		var rev int64 // 0: list
		var minRev int64
		if w.MinRevision != nil {
			minRev = w.MinRevision()
		}
		restarted := false
		bo := NewBackoff()
		for ctx.Err() == nil {
			streamCtx, cancel := context.WithCancel(ctx)
			resynced := w.cancelOnResync(streamCtx, cancel)
			first := rev == 0
			err := w.stream(streamCtx, rev, minRev, func(ev *svcregv1.WatchEndpointsResponse) bool {
				bo.Reset()
				if ev.GetType() == svcregv1.EventType_EVENT_TYPE_SYNCED || rev > 0 {
					rev = max(rev, ev.GetResourceVersion())
				}
				ok := yield(Event{ev, first, first && restarted}, nil)
				first, restarted = false, false
				return ok
			})
			cancel()
			switch why := reason.Of(err); {
			case err == errStopped || ctx.Err() != nil:
				return
			case resynced():
				continue // a fresh stream at once, from rev
			case why == reason.Behind && minRev > 0:
				minRev = 0 // not there in time: take what the server has
				continue
			case why == reason.ResourceVersionTooOld:
				rev = 0 // list again
				continue
			case why == reason.ResourceVersionAhead:
				// The registry has not reached our revision and did not catch
				// up in time: it restarted without its state (or restored an
				// older one). List again.
				rev, restarted = 0, true
				continue
			case terminal(err):
				yield(Event{}, err)
				return
			}
			if w.OnError != nil {
				w.OnError(err)
			}
			if clock.Sleep(ctx, bo.Next()) != nil {
				return
			}
		}
	}
}

// errStopped: the consumer stopped reading.
var errStopped = status.Error(codes.Canceled, "stopped")

// stream runs one WatchEndpoints stream from rev and hands its events to
// deliver until it fails or deliver says stop.
func (w *Watch) stream(ctx context.Context, rev, minRev int64, deliver func(*svcregv1.WatchEndpointsResponse) bool) error {
	req := &svcregv1.WatchEndpointsRequest{Namespace: w.Namespace, Service: w.Service, ResourceVersion: rev}
	if rev == 0 {
		req.MinRevision = minRev
	}
	st, err := w.Client.WatchEndpoints(ctx, req)
	if err != nil {
		return err
	}
	for {
		ev, err := st.Recv()
		if err != nil {
			return err
		}
		if !deliver(ev) {
			return errStopped
		}
	}
}

// cancelOnResync cancels a stream when a resync is asked for, and reports
// whether that is why it ended.
func (w *Watch) cancelOnResync(ctx context.Context, cancel context.CancelFunc) func() bool {
	asked := make(chan bool, 1)
	go func() {
		select {
		case <-w.resync:
			asked <- true
			cancel()
		case <-ctx.Done():
			asked <- false
		}
	}()
	return func() bool { return <-asked }
}

// terminal reports whether retrying cannot fix an error: a request the
// registry refuses as it is (FIELD_INVALID), or a registry without the
// method. A refused credential (UNAUTHENTICATED, PERMISSION_DENIED) is
// retried with backoff: a token file may be rotated meanwhile, and the
// last view stays in use until then.
func terminal(err error) bool {
	return reason.Of(err) == reason.FieldInvalid || status.Code(err) == codes.Unimplemented
}

// View is a consistent state of one service and its endpoints.
type View struct {
	// Restarted: this view is the first after a registry restart, which may
	// not have its instances back yet.
	Restarted bool
	// Revision is the registry revision the view is at.
	Revision int64
	// Service is nil when the service does not exist.
	Service *svcregv1.Service
	// Endpoints by instance name. Never modified once handed out.
	Endpoints map[string]*svcregv1.Endpoint
}

// List is the view's endpoints as a slice (in no particular order: the
// service model puts backends in canonical order).
func (v View) List() []*svcregv1.Endpoint {
	out := make([]*svcregv1.Endpoint, 0, len(v.Endpoints))
	for _, ep := range v.Endpoints {
		out = append(out, ep)
	}
	return out
}

// Follow keeps a view of the service and its endpoints and calls onView
// with each new one: after a snapshot and after each change, never a
// half-applied one. onView runs on the watching goroutine. Connection
// failures go to OnError (the watch keeps retrying and, once it had a
// view, keeps it meanwhile). It returns when ctx ends, or with an error
// retrying cannot fix.
func (w *Watch) Follow(ctx context.Context, onView func(View)) error {
	var cur, next View
	for ev, err := range w.Events(ctx) {
		if err != nil {
			return err
		}
		if ev.Relist {
			next = View{Endpoints: map[string]*svcregv1.Endpoint{}, Restarted: ev.Restarted}
		}
		switch ev.GetType() {
		case svcregv1.EventType_EVENT_TYPE_SYNCED:
			next.Revision = ev.GetResourceVersion()
			if !ev.GetServiceExists() {
				next.Service = nil
			}
			cur, next = next, View{}
			onView(cur)
		case svcregv1.EventType_EVENT_TYPE_BOOKMARK:
		default:
			if next.Endpoints != nil { // inside a snapshot
				applyEvent(&next, ev.WatchEndpointsResponse)
				continue
			}
			view := View{Revision: ev.GetResourceVersion(), Service: cur.Service, Endpoints: maps.Clone(cur.Endpoints)}
			applyEvent(&view, ev.WatchEndpointsResponse)
			cur = view
			onView(cur)
		}
	}
	return ctx.Err()
}

func applyEvent(v *View, ev *svcregv1.WatchEndpointsResponse) {
	switch {
	case ev.GetEndpoint() != nil:
		if ev.GetType() == svcregv1.EventType_EVENT_TYPE_DELETED {
			delete(v.Endpoints, ev.GetEndpoint().GetInstance())
		} else {
			v.Endpoints[ev.GetEndpoint().GetInstance()] = ev.GetEndpoint()
		}
	case ev.GetService() != nil:
		if ev.GetType() == svcregv1.EventType_EVENT_TYPE_DELETED {
			v.Service = nil
		} else {
			v.Service = ev.GetService()
		}
	}
}
