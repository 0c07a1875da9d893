// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package endpointwatch

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
	"github.com/svcreg/svcreg/reason"
)

// script is one WatchEndpoints stream the fake registry serves: its
// events, then err (nil: the stream stays open until it is canceled).
type script struct {
	events []*svcregv1.WatchEndpointsResponse
	err    error
}

// fakeRegistry serves scripted streams, one per call, and records the
// revisions asked for.
type fakeRegistry struct {
	svcregv1grpc.RegistryServiceClient
	mu      sync.Mutex
	scripts []script
	asked   []int64
	minRevs []int64
	calls   chan int64
}

func newFakeRegistry(scripts ...script) *fakeRegistry {
	return &fakeRegistry{scripts: scripts, calls: make(chan int64, 100)}
}

func (f *fakeRegistry) WatchEndpoints(ctx context.Context, req *svcregv1.WatchEndpointsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[svcregv1.WatchEndpointsResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, req.GetResourceVersion())
	f.minRevs = append(f.minRevs, req.GetMinRevision())
	f.calls <- req.GetResourceVersion()
	if len(f.scripts) == 0 {
		return &fakeStream{ctx: ctx}, nil // nothing more: open and silent
	}
	s := f.scripts[0]
	f.scripts = f.scripts[1:]
	return &fakeStream{ctx: ctx, script: s}, nil
}

func (f *fakeRegistry) revisionsAsked() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

type fakeStream struct {
	grpc.ClientStream
	ctx    context.Context
	script script
}

func (s *fakeStream) Recv() (*svcregv1.WatchEndpointsResponse, error) {
	if len(s.script.events) > 0 {
		ev := s.script.events[0]
		s.script.events = s.script.events[1:]
		return ev, nil
	}
	if s.script.err != nil {
		return nil, s.script.err
	}
	<-s.ctx.Done()
	return nil, status.FromContextError(s.ctx.Err()).Err()
}

func withReason(code codes.Code, why string) error {
	st, _ := status.New(code, why).WithDetails(&errdetails.ErrorInfo{Reason: why, Domain: reason.Domain})
	return st.Err()
}

func added(instance string, rev int64) *svcregv1.WatchEndpointsResponse {
	return &svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_ADDED, ResourceVersion: rev,
		Endpoint: &svcregv1.Endpoint{Instance: instance, Ip: "10.0.0.1"}}
}

func synced(rev int64) *svcregv1.WatchEndpointsResponse {
	return &svcregv1.WatchEndpointsResponse{Type: svcregv1.EventType_EVENT_TYPE_SYNCED, ResourceVersion: rev, ServiceExists: true}
}

func deleted(instance string, rev int64) *svcregv1.WatchEndpointsResponse {
	ev := added(instance, rev)
	ev.Type = svcregv1.EventType_EVENT_TYPE_DELETED
	return ev
}

var unavailable = status.Error(codes.Unavailable, "connection refused")

// follow runs Follow until it has produced n views, returning them.
func follow(t *testing.T, f *fakeRegistry, n int, during func(w *Watch)) []View {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := New(f, "shop", "web", nil)
	views := make(chan View, 100)
	done := make(chan error, 1)
	go func() { done <- w.Follow(ctx, func(v View) { views <- v }) }()
	if during != nil {
		during(w)
	}
	var out []View
	for len(out) < n {
		select {
		case v := <-views:
			out = append(out, v)
		case err := <-done:
			t.Fatalf("Follow ended after %d views: %v", len(out), err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d views, want %d", len(out), n)
		}
	}
	return out
}

func names(v View) []string {
	var out []string
	for name := range v.Endpoints {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func TestResumeFromTheLastRevision(t *testing.T) {
	f := newFakeRegistry(
		script{events: []*svcregv1.WatchEndpointsResponse{added("a", 3), synced(5), added("b", 7)}, err: unavailable},
		script{events: []*svcregv1.WatchEndpointsResponse{deleted("a", 9)}},
	)
	views := follow(t, f, 3, nil)
	if got := names(views[2]); !slices.Equal(got, []string{"b"}) || views[2].Revision != 9 {
		t.Errorf("after the resumed delete: %v at %d", got, views[2].Revision)
	}
	// The snapshot's ADDED revision (3) is not a resume point; SYNCED (5)
	// and the live event after it (7) are.
	if got := f.revisionsAsked(); !slices.Equal(got[:2], []int64{0, 7}) {
		t.Errorf("revisions asked %v, want [0 7 ...]", got)
	}
}

func TestTooOldRelists(t *testing.T) {
	f := newFakeRegistry(
		script{events: []*svcregv1.WatchEndpointsResponse{added("a", 3), synced(5)}, err: unavailable},
		script{err: withReason(codes.OutOfRange, reason.ResourceVersionTooOld)},
		script{events: []*svcregv1.WatchEndpointsResponse{added("c", 20), synced(30)}},
	)
	views := follow(t, f, 2, nil)
	if got := names(views[1]); !slices.Equal(got, []string{"c"}) || views[1].Revision != 30 || views[1].Restarted {
		t.Errorf("after relisting: %v at %d (restarted %v)", got, views[1].Revision, views[1].Restarted)
	}
	if got := f.revisionsAsked(); !slices.Equal(got[:3], []int64{0, 5, 0}) {
		t.Errorf("revisions asked %v, want [0 5 0 ...]", got)
	}
}

func TestRegistryRestartRelistsMarkedRestarted(t *testing.T) {
	f := newFakeRegistry(
		script{events: []*svcregv1.WatchEndpointsResponse{added("a", 3), synced(50)}, err: unavailable},
		script{err: withReason(codes.InvalidArgument, reason.ResourceVersionAhead)},
		script{events: []*svcregv1.WatchEndpointsResponse{synced(2)}},
	)
	views := follow(t, f, 2, nil)
	if !views[1].Restarted || len(views[1].Endpoints) != 0 {
		t.Errorf("the view after a restart: %+v, want Restarted and empty", views[1])
	}
}

func TestReconnectBacksOff(t *testing.T) {
	f := newFakeRegistry(
		script{err: unavailable}, script{err: unavailable}, script{err: unavailable},
		script{events: []*svcregv1.WatchEndpointsResponse{synced(5)}},
	)
	fake := clocktest.Install(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var failures []error
	w := New(f, "shop", "web", func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() })
	views := make(chan View, 1)
	go w.Follow(ctx, func(v View) { views <- v })
	for i := range 3 {
		<-f.calls // a failed attempt, then a backoff sleep on the fake clock
		select {
		case <-f.calls:
			t.Fatalf("attempt %d retried without waiting", i+2)
		case <-time.After(20 * time.Millisecond):
		}
		fake.AdvanceWhenWaiting(t, 1, 3*time.Second) // the cap: any backoff has passed
	}
	select {
	case v := <-views:
		if v.Revision != 5 {
			t.Errorf("view at %d", v.Revision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no view after the registry came back")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) != 3 {
		t.Errorf("%d failures reported, want 3", len(failures))
	}
}

func TestTerminalErrorsEndTheWatch(t *testing.T) {
	for _, err := range []error{withReason(codes.InvalidArgument, reason.FieldInvalid), status.Error(codes.Unimplemented, "old")} {
		f := newFakeRegistry(script{err: err})
		got := New(f, "shop", "web", nil).Follow(context.Background(), func(View) {})
		if status.Code(got) != status.Code(err) {
			t.Errorf("%v: Follow ended with %v", err, got)
		}
	}
}

// TestRefusedCredentialsAreRetried: UNAUTHENTICATED and PERMISSION_DENIED
// are reported and retried with backoff (a rotated token file fixes
// them), not the end of the watch.
func TestRefusedCredentialsAreRetried(t *testing.T) {
	f := newFakeRegistry(
		script{err: status.Error(codes.Unauthenticated, "revoked")}, script{err: status.Error(codes.PermissionDenied, "no")},
		script{events: []*svcregv1.WatchEndpointsResponse{synced(5)}},
	)
	fake := clocktest.Install(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var failures []codes.Code
	w := New(f, "shop", "web", func(err error) { mu.Lock(); failures = append(failures, status.Code(err)); mu.Unlock() })
	views := make(chan View, 1)
	go w.Follow(ctx, func(v View) { views <- v })
	for range 2 {
		<-f.calls
		fake.AdvanceWhenWaiting(t, 1, 3*time.Second)
	}
	if v := <-views; v.Revision != 5 {
		t.Fatalf("view at revision %d, want 5", v.Revision)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(failures, []codes.Code{codes.Unauthenticated, codes.PermissionDenied}) {
		t.Errorf("failures reported: %v", failures)
	}
}

func TestResyncOpensAFreshStream(t *testing.T) {
	f := newFakeRegistry(
		script{events: []*svcregv1.WatchEndpointsResponse{added("a", 3), synced(5)}}, // then silent
		script{events: []*svcregv1.WatchEndpointsResponse{added("b", 8)}},
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := New(f, "shop", "web", nil)
	views := make(chan View, 10)
	go w.Follow(ctx, func(v View) { views <- v })
	if v := <-views; v.Revision != 5 {
		t.Fatalf("first view at %d", v.Revision)
	}
	for range 3 { // a burst coalesces into one new stream
		w.Resync()
	}
	select {
	case v := <-views:
		if got := names(v); !slices.Equal(got, []string{"a", "b"}) || v.Revision != 8 {
			t.Errorf("after the resync: %v at %d", got, v.Revision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no view from the fresh stream")
	}
	if got := f.revisionsAsked(); !slices.Equal(got, []int64{0, 5}) && !slices.Equal(got, []int64{0, 5, 8}) {
		t.Errorf("revisions asked %v, want one fresh stream resumed from 5", got)
	}
}

func TestBackoff(t *testing.T) {
	b := NewBackoff()
	for i := range 20 {
		d := b.Next()
		if d <= 0 || d > b.Max {
			t.Fatalf("attempt %d: %v", i, d)
		}
	}
	b.Reset()
	if d := b.Next(); d > b.Base {
		t.Errorf("after reset: %v", d)
	}
}

// TestMinRevision: the first snapshot asks for the client's own revision;
// a server that does not reach it (BEHIND) is asked again for what it has,
// and a resumed stream asks for nothing more than its revision.
func TestMinRevision(t *testing.T) {
	f := newFakeRegistry(
		script{err: withReason(codes.Unavailable, reason.Behind)},
		script{events: []*svcregv1.WatchEndpointsResponse{added("a", 3), synced(5)}, err: unavailable},
		script{events: []*svcregv1.WatchEndpointsResponse{added("b", 6)}},
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := New(f, "shop", "web", nil)
	w.MinRevision = func() int64 { return 42 }
	views := make(chan View, 10)
	go w.Follow(ctx, func(v View) { views <- v })
	for {
		select {
		case v := <-views:
			if len(v.Endpoints) < 2 {
				continue
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no view with both endpoints")
		}
		break
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []int64{42, 0, 0}; !slices.Equal(f.minRevs[:3], want) {
		t.Errorf("min revisions asked %v, want %v", f.minRevs, want)
	}
	if want := []int64{0, 0, 5}; !slices.Equal(f.asked[:3], want) {
		t.Errorf("revisions asked %v, want %v", f.asked, want)
	}
}
