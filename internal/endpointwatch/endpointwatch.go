// Package endpointwatch follows a service's endpoints on a registry:
// the resuming WatchEndpoints stream and the consistent view built from
// it, shared by the client SDK and the resolver.
package endpointwatch

import (
	"context"
	"iter"
	"maps"
	"math/rand/v2"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// DefaultAddr is the registry address when none is given and SVCREG_ADDR is
// unset.
const DefaultAddr = "127.0.0.1:7400"

// RegistryAddr resolves a registry address: addr, else $SVCREG_ADDR, else
// DefaultAddr.
func RegistryAddr(addr string) string {
	if addr != "" {
		return addr
	}
	if env := os.Getenv("SVCREG_ADDR"); env != "" {
		return env
	}
	return DefaultAddr
}

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

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Event is one event, marked Relist when it begins a new snapshot, and
// Restarted when that snapshot follows a registry restart (the registry's
// revision went back: it lost its state, or restored an older one).
type Event struct {
	*svcregv1.WatchEndpointsResponse
	Relist    bool
	Restarted bool
}

// Events is the resuming WatchEndpoints stream. Resuming needs a revision the
// stream vouched for: a SYNCED or BOOKMARK marker, or a live event after
// them; a snapshot's ADDED events carry their objects' older revisions and
// do not count. onError hears of connection failures.
func Events(ctx context.Context, cl svcregv1.RegistryServiceClient, namespace, service string, onError func(error)) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		var rev int64 // 0: list
		restarted := false
		bo := NewBackoff()
		for ctx.Err() == nil {
			st, err := cl.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{
				Namespace: namespace, Service: service, ResourceVersion: rev})
			first := rev == 0
			for err == nil {
				var ev *svcregv1.WatchEndpointsResponse
				if ev, err = st.Recv(); err != nil {
					break
				}
				bo.Reset()
				if ev.GetType() == svcregv1.EventType_EVENT_TYPE_SYNCED || rev > 0 {
					rev = max(rev, ev.GetResourceVersion())
				}
				if !yield(Event{ev, first, first && restarted}, nil) {
					return
				}
				first, restarted = false, false
			}
			switch code := status.Code(err); {
			case ctx.Err() != nil:
				return
			case code == codes.OutOfRange:
				rev = 0 // too old: list again
				continue
			case code == codes.InvalidArgument && rev > 0:
				// From the future: the registry restarted with a younger
				// history. List again.
				rev, restarted = 0, true
				continue
			case code == codes.InvalidArgument, code == codes.Unimplemented,
				code == codes.PermissionDenied, code == codes.Unauthenticated:
				yield(Event{}, err)
				return
			}
			if onError != nil {
				onError(err)
			}
			if Sleep(ctx, bo.Next()) != nil {
				return
			}
		}
	}
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

// Follow keeps a view of a service and its endpoints and calls onView
// with each new one: after a snapshot and after each change, never a
// half-applied one. onView runs on the watching goroutine. onError, if not
// nil, hears of connection failures (the watch keeps retrying and, once it
// had a view, keeps it meanwhile). It returns when ctx ends, or with an
// error retrying cannot fix.
func Follow(ctx context.Context, cl svcregv1.RegistryServiceClient, namespace, service string, onView func(View), onError func(error)) error {
	var cur, next View
	for ev, err := range Events(ctx, cl, namespace, service, onError) {
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
