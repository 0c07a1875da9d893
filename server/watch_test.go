// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
	"github.com/svcreg/svcreg/reason"
)

type endpointStream = grpc.ServerStreamingClient[svcregv1.WatchEndpointsResponse]

func watchEndpoints(t *testing.T, ts *testServer, ns, svc string, rv int64) (endpointStream, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	st, err := ts.client.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: ns, Service: svc, ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	return st, cancel
}

// describe renders an event compactly: "ADDED endpoint web-1 ready", ...
func describe(ev *svcregv1.WatchEndpointsResponse) string {
	typ := strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")
	switch {
	case ev.GetEndpoint() != nil:
		e := ev.GetEndpoint()
		return fmt.Sprintf("%s endpoint %s ready=%v serving=%v terminating=%v", typ, e.GetInstance(), e.GetReady(), e.GetServing(), e.GetTerminating())
	case ev.GetService() != nil:
		return fmt.Sprintf("%s service %s scheduler=%s", typ, ev.GetService().GetName(), ev.GetService().GetScheduler())
	case ev.GetType() == svcregv1.EventType_EVENT_TYPE_SYNCED:
		return fmt.Sprintf("SYNCED exists=%v", ev.GetServiceExists())
	}
	return typ
}

func recvN(t *testing.T, st endpointStream, n int) []*svcregv1.WatchEndpointsResponse {
	t.Helper()
	var out []*svcregv1.WatchEndpointsResponse
	for len(out) < n {
		ev, err := st.Recv()
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

func expectEvents(t *testing.T, st endpointStream, want ...string) []*svcregv1.WatchEndpointsResponse {
	t.Helper()
	evs := recvN(t, st, len(want))
	for i, ev := range evs {
		if got := describe(ev); got != want[i] {
			t.Errorf("event %d: got %q, want %q", i, got, want[i])
		}
	}
	return evs
}

func (ts *testServer) mustCreateService(t testing.TB, svc *svcregv1.Service) *svcregv1.Service {
	t.Helper()
	resp, err := ts.client.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetService()
}

func (ts *testServer) mustCreateInstance(t testing.TB, inst *svcregv1.Instance) *svcregv1.Instance {
	t.Helper()
	resp, err := ts.client.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: inst})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetInstance()
}

func (ts *testServer) mustPatchInstance(t testing.TB, inst *svcregv1.Instance, paths ...string) {
	t.Helper()
	if _, err := ts.client.UpdateInstance(context.Background(), &svcregv1.UpdateInstanceRequest{Instance: inst,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}); err != nil {
		t.Fatal(err)
	}
}

func webSvc() *svcregv1.Service {
	return &svcregv1.Service{Name: "web", Namespace: "shop", Selector: map[string]string{"app": "web"},
		Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443}}}
}

func webInst(name string) *svcregv1.Instance {
	return &svcregv1.Instance{Name: name, Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": "web"}}
}

func TestWatchEndpointsSnapshotAndChanges(t *testing.T) {
	ts := startServer(t, Config{})
	ts.mustCreateService(t, webSvc())
	ts.mustCreateInstance(t, webInst("web-1"))

	st, cancel := watchEndpoints(t, ts, "shop", "web", 0)
	defer cancel()
	evs := expectEvents(t, st, "ADDED service web scheduler=rr", "ADDED endpoint web-1 ready=true serving=true terminating=false", "SYNCED exists=true")
	if evs[2].GetResourceVersion() != ts.store.Revision() {
		t.Errorf("SYNCED at %d, store at %d", evs[2].GetResourceVersion(), ts.store.Revision())
	}

	ts.mustCreateInstance(t, webInst("web-2"))
	expectEvents(t, st, "ADDED endpoint web-2 ready=true serving=true terminating=false")

	// Graceful drain: one event, ready=false serving=true terminating=true.
	ts.mustPatchInstance(t, &svcregv1.Instance{Name: "web-1", Namespace: "shop", Terminating: true}, "terminating")
	expectEvents(t, st, "MODIFIED endpoint web-1 ready=false serving=true terminating=true")

	// A label change on the service is nothing clients need; a scheduler
	// change is.
	ctx := context.Background()
	ts.client.UpdateService(ctx, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
		Labels: map[string]string{"team": "a"}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}}})
	ts.client.UpdateService(ctx, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
		Scheduler: "wlc"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"scheduler"}}})
	expectEvents(t, st, "MODIFIED service web scheduler=wlc")

	ts.client.DeleteInstance(ctx, &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: "web-2"})
	expectEvents(t, st, "DELETED endpoint web-2 ready=true serving=true terminating=false")

	ts.client.DeleteService(ctx, &svcregv1.DeleteServiceRequest{Namespace: "shop", Name: "web"})
	evs = recvN(t, st, 2)
	got := []string{describe(evs[0]), describe(evs[1])}
	if !contains(got, "DELETED service web scheduler=wlc") || !contains(got, "DELETED endpoint web-1 ready=false serving=true terminating=true") {
		t.Errorf("service deletion: %v", got)
	}
	if evs[0].GetResourceVersion() != evs[1].GetResourceVersion() {
		t.Errorf("one command's events carry different revisions")
	}
}

func TestWatchBeforeTheServiceExists(t *testing.T) {
	ts := startServer(t, Config{})
	ts.mustCreateInstance(t, webInst("web-1"))
	st, cancel := watchEndpoints(t, ts, "shop", "web", 0)
	defer cancel()
	expectEvents(t, st, "SYNCED exists=false")
	ts.mustCreateService(t, webSvc())
	evs := recvN(t, st, 2)
	if got := []string{describe(evs[0]), describe(evs[1])}; !contains(got, "ADDED service web scheduler=rr") ||
		!contains(got, "ADDED endpoint web-1 ready=true serving=true terminating=false") {
		t.Errorf("service creation: %v", got)
	}
}

func TestWatchResume(t *testing.T) {
	ts := startServer(t, Config{WatchHistory: 8})
	ts.mustCreateService(t, webSvc())
	ts.mustCreateInstance(t, webInst("web-1"))
	rev := ts.store.Revision()
	ts.mustCreateInstance(t, webInst("web-2"))
	ts.mustCreateInstance(t, webInst("web-3"))

	st, cancel := watchEndpoints(t, ts, "shop", "web", rev)
	defer cancel()
	evs := expectEvents(t, st, "ADDED endpoint web-2 ready=true serving=true terminating=false", "ADDED endpoint web-3 ready=true serving=true terminating=false")
	if evs[0].GetResourceVersion() != rev+1 || evs[1].GetResourceVersion() != rev+2 {
		t.Errorf("revisions %d %d, want %d %d", evs[0].GetResourceVersion(), evs[1].GetResourceVersion(), rev+1, rev+2)
	}

	for i := 4; i < 12; i++ {
		ts.mustCreateInstance(t, webInst(fmt.Sprint("web-", i)))
	}
	tests := []struct {
		name   string
		rv     int64
		code   codes.Code
		reason string
	}{
		{"too old", rev, codes.OutOfRange, reason.ResourceVersionTooOld},
		{"future", ts.store.Revision() + 5, codes.InvalidArgument, reason.ResourceVersionAhead},
		{"negative", -1, codes.InvalidArgument, reason.FieldInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, cancel := watchEndpoints(t, ts, "shop", "web", tt.rv)
			defer cancel()
			_, err := st.Recv()
			s := status.Convert(err)
			if s.Code() != tt.code {
				t.Fatalf("code %v, want %v (%v)", s.Code(), tt.code, err)
			}
			found := false
			for _, d := range s.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == tt.reason {
					found = true
				}
			}
			if !found {
				t.Errorf("no ErrorInfo reason %s in %v", tt.reason, s.Details())
			}
		})
	}
}

func TestWatchBookmarks(t *testing.T) {
	clock := clocktest.New()
	ts := startServer(t, Config{Clock: clock, BookmarkInterval: 30 * time.Second})
	ts.mustCreateService(t, webSvc())
	st, cancel := watchEndpoints(t, ts, "shop", "web", 0)
	defer cancel()
	expectEvents(t, st, "ADDED service web scheduler=rr", "SYNCED exists=true")
	// Another service's change moves the revision without an event here;
	// the bookmark carries the newer revision.
	other := webSvc()
	other.Name = "api"
	ts.mustCreateService(t, other)
	want := ts.store.Revision()
	for ts.hub.Dispatched() < want {
		time.Sleep(time.Millisecond)
	}
	ctx, cancelWait := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelWait()
	clock.BlockUntilContext(ctx, 1) // the watch's bookmark ticker
	clock.Advance(30 * time.Second)
	ev := recvN(t, st, 1)[0]
	if ev.GetType() != svcregv1.EventType_EVENT_TYPE_BOOKMARK || ev.GetResourceVersion() != want {
		t.Errorf("got %s at %d, want BOOKMARK at %d", describe(ev), ev.GetResourceVersion(), want)
	}
}

func TestWatchLabelSelector(t *testing.T) {
	ts := startServer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := ts.client.Watch(ctx, &svcregv1.WatchRequest{Namespace: "-", LabelSelector: "tier=front",
		Kinds: []svcregv1.ObjectKind{svcregv1.ObjectKind_OBJECT_KIND_INSTANCE}})
	if err != nil {
		t.Fatal(err)
	}
	next := func() string {
		ev, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_") + " " + ev.GetInstance().GetName()
	}
	if got := next(); got != "SYNCED " {
		t.Fatalf("got %q", got)
	}
	inst := webInst("a")
	ts.mustCreateInstance(t, inst) // no tier: not seen
	inst.Labels["tier"] = "front"
	ts.mustPatchInstance(t, inst, "labels") // starts matching
	ts.mustPatchInstance(t, &svcregv1.Instance{Name: "a", Namespace: "shop", Weight: proto.Uint32(3)}, "weight")
	ts.mustPatchInstance(t, &svcregv1.Instance{Name: "a", Namespace: "shop", Labels: map[string]string{"tier": "back"}}, "labels")
	ts.mustCreateService(t, &svcregv1.Service{Name: "s", Namespace: "shop", Labels: map[string]string{"tier": "front"}, Ports: []*svcregv1.ServicePort{{Port: 1}}})
	ts.mustCreateInstance(t, &svcregv1.Instance{Name: "b", Namespace: "other", Ip: "10.0.0.1", Labels: map[string]string{"tier": "front"}})
	for _, want := range []string{"ADDED a", "MODIFIED a", "DELETED a", "ADDED b"} {
		if got := next(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestWatchRandomHistory is the property test: writers change instances
// of several services at random while watchers disconnect and resume at
// random. Each watcher's view, rebuilt from its events, must equal the
// store at the end, revisions never go back, and no event arrives twice.
func TestWatchRandomHistory(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{WatchHistory: 100000, BookmarkInterval: 20 * time.Millisecond})
	services := []string{"s0", "s1", "s2"}
	for i, s := range services {
		ts.mustCreateService(t, &svcregv1.Service{Name: s, Namespace: "ns", Selector: map[string]string{"svc": s},
			Ports: []*svcregv1.ServicePort{{Port: int32(80 + i)}}})
	}
	const writers, writesEach, watchersPerService = 4, 150, 2
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			randomWrites(ts, rand.New(rand.NewPCG(uint64(w), 1)), fmt.Sprint("i", w), services, writesEach)
		}(w)
	}
	var final atomicRev
	results := make(chan error, len(services)*watchersPerService)
	views := make([]*watchView, len(services)*watchersPerService)
	for i := range views {
		views[i] = &watchView{service: services[i%len(services)], eps: map[string]*svcregv1.Endpoint{}, seen: map[string]bool{}}
		go func(v *watchView, rng *rand.Rand) {
			results <- v.run(ts, rng, &final)
		}(views[i], rand.New(rand.NewPCG(uint64(i), 2)))
	}
	wg.Wait()
	final.set(ts.store.Revision())
	for range views {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	for _, v := range views {
		eps, err := ts.store.Read().Endpoints("ns", v.service)
		if err != nil {
			t.Fatal(err)
		}
		if len(eps) != len(v.eps) {
			t.Errorf("watcher of %s has %d endpoints, the store %d", v.service, len(v.eps), len(eps))
		}
		for _, ep := range eps {
			if !proto.Equal(ep, v.eps[ep.GetInstance()]) {
				t.Errorf("watcher of %s: endpoint %s is %v, the store's %v", v.service, ep.GetInstance(), v.eps[ep.GetInstance()], ep)
			}
		}
		if v.resumes == 0 {
			t.Errorf("watcher of %s never resumed", v.service)
		}
	}
}

func randomWrites(ts *testServer, rng *rand.Rand, prefix string, services []string, n int) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%d", prefix, rng.IntN(8))
		svc := services[rng.IntN(len(services))]
		switch rng.IntN(4) {
		case 0:
			ts.client.DeleteInstance(ctx, &svcregv1.DeleteInstanceRequest{Namespace: "ns", Name: name})
		case 1:
			ts.client.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: name, Namespace: "ns",
				Labels: map[string]string{"svc": svc}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}}})
		case 2:
			ts.client.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: name, Namespace: "ns",
				Ready: proto.Bool(rng.IntN(2) == 0), Weight: proto.Uint32(uint32(rng.IntN(5)))},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ready", "weight"}}})
		default:
			ts.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{Name: name, Namespace: "ns",
				Ip: "10.0.0.1", Labels: map[string]string{"svc": svc}}})
		}
	}
}

type atomicRev struct {
	mu  sync.Mutex
	rev int64
}

func (a *atomicRev) set(r int64) { a.mu.Lock(); a.rev = r; a.mu.Unlock() }
func (a *atomicRev) get() int64  { a.mu.Lock(); defer a.mu.Unlock(); return a.rev }

// watchView is one watcher's reconstruction of a service's endpoints.
type watchView struct {
	service string
	eps     map[string]*svcregv1.Endpoint
	seen    map[string]bool // "revision/instance" of every event received
	rev     int64           // everything up to rev has been received
	resumes int
}

// run watches with random disconnects (resuming from v.rev) until the
// writers are done (final is set) and the view has caught up with it.
func (v *watchView) run(ts *testServer, rng *rand.Rand, final *atomicRev) error {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if v.rev > 0 {
			v.resumes++
		}
		st, err := ts.client.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: "ns", Service: v.service, ResourceVersion: v.rev})
		if err != nil {
			cancel()
			return err
		}
		budget := 1 + rng.IntN(30) // events before a random disconnect
		for budget > 0 {
			ev, err := st.Recv()
			if err != nil {
				cancel()
				return fmt.Errorf("watcher of %s: %w", v.service, err)
			}
			if err := v.apply(ev); err != nil {
				cancel()
				return err
			}
			if f := final.get(); f > 0 && v.rev >= f {
				cancel()
				return nil
			}
			if ev.GetType() != svcregv1.EventType_EVENT_TYPE_BOOKMARK {
				budget--
			}
		}
		cancel()
	}
}

func (v *watchView) apply(ev *svcregv1.WatchEndpointsResponse) error {
	rev := ev.GetResourceVersion()
	switch ev.GetType() {
	case svcregv1.EventType_EVENT_TYPE_SYNCED:
		v.rev = rev
		return nil
	case svcregv1.EventType_EVENT_TYPE_BOOKMARK:
		if rev < v.rev {
			return fmt.Errorf("watcher of %s: bookmark %d after revision %d", v.service, rev, v.rev)
		}
		v.rev = rev
		return nil
	}
	ep := ev.GetEndpoint()
	if ep == nil {
		return nil // the service's own events
	}
	if v.rev > 0 && rev < v.rev {
		return fmt.Errorf("watcher of %s: revision %d after %d", v.service, rev, v.rev)
	}
	key := fmt.Sprint(rev, "/", ep.GetInstance())
	if v.rev > 0 && v.seen[key] {
		return fmt.Errorf("watcher of %s: duplicate event %s", v.service, key)
	}
	v.seen[key] = true
	if ev.GetType() == svcregv1.EventType_EVENT_TYPE_DELETED {
		delete(v.eps, ep.GetInstance())
	} else {
		v.eps[ep.GetInstance()] = ep
	}
	if v.rev > 0 {
		v.rev = rev
	}
	return nil
}

// TestWatchREST reads the endpoints stream through the gateway as curl -N
// would: newline-delimited JSON, resumable with ?resource_version=.
func TestWatchREST(t *testing.T) {
	ts := startServer(t, Config{})
	ts.mustCreateService(t, webSvc())
	ts.mustCreateInstance(t, webInst("web-1"))
	rev := ts.store.Revision()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.base+"/v1/namespaces/shop/services/web/endpoints:watch", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() map[string]any {
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", lines.Err())
		}
		var msg struct {
			Result map[string]any `json:"result"`
		}
		if err := json.Unmarshal(lines.Bytes(), &msg); err != nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
		return msg.Result
	}
	for _, want := range []string{"EVENT_TYPE_ADDED", "EVENT_TYPE_ADDED", "EVENT_TYPE_SYNCED"} {
		if got := next()["type"]; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	ts.mustCreateInstance(t, webInst("web-2"))
	ev := next()
	if ev["type"] != "EVENT_TYPE_ADDED" || ev["endpoint"].(map[string]any)["instance"] != "web-2" {
		t.Errorf("live event %v", ev)
	}
	// Resume through the query parameter.
	resumed, err := http.Get(fmt.Sprintf("%s/v1/namespaces/shop/services/web/endpoints:watch?resource_version=%d", ts.base, rev))
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Body.Close()
	r := bufio.NewReader(resumed.Body)
	line, _ := r.ReadString('\n')
	if !strings.Contains(line, `"instance":"web-2"`) {
		t.Errorf("resumed stream starts with %q", line)
	}
	io.Copy(io.Discard, io.LimitReader(r, 0))
}

// TestWatchEveryEndpoint: Watch with OBJECT_KIND_ENDPOINT streams the
// endpoints of every service of a namespace (or of every namespace) on
// one stream, with the services when asked, from one snapshot: what the
// node agent follows instead of a stream per service.
func TestWatchEveryEndpoint(t *testing.T) {
	ts := startServer(t, Config{})
	ts.mustCreateService(t, webSvc())
	ts.mustCreateInstance(t, webInst("web-1"))
	other := webSvc()
	other.Namespace = "back"
	ts.mustCreateService(t, other)
	in := webInst("api-1")
	in.Namespace = "back"
	ts.mustCreateInstance(t, in)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := ts.client.Watch(ctx, &svcregv1.WatchRequest{Namespace: "-",
		Kinds: []svcregv1.ObjectKind{svcregv1.ObjectKind_OBJECT_KIND_SERVICE, svcregv1.ObjectKind_OBJECT_KIND_ENDPOINT}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for {
		ev, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetType() == svcregv1.EventType_EVENT_TYPE_SYNCED {
			break
		}
		switch {
		case ev.GetService() != nil:
			got["service "+ev.GetService().GetNamespace()]++
		case ev.GetEndpoint() != nil:
			got["endpoint "+ev.GetEndpoint().GetNamespace()+"/"+ev.GetEndpoint().GetInstance()]++
		}
	}
	want := map[string]int{"service shop": 1, "service back": 1, "endpoint shop/web-1": 1, "endpoint back/api-1": 1}
	if !maps.Equal(got, want) {
		t.Errorf("snapshot %v, want %v", got, want)
	}
	ts.mustCreateInstance(t, webInst("web-2"))
	ev, err := st.Recv()
	if err != nil || ev.GetEndpoint().GetInstance() != "web-2" || ev.GetType() != svcregv1.EventType_EVENT_TYPE_ADDED {
		t.Errorf("a new endpoint: %v, %v", ev, err)
	}
	// A label selector does not apply to endpoints.
	bad, err := ts.client.Watch(ctx, &svcregv1.WatchRequest{Namespace: "-", LabelSelector: "app=web",
		Kinds: []svcregv1.ObjectKind{svcregv1.ObjectKind_OBJECT_KIND_ENDPOINT}})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "label_selector") {
		t.Errorf("endpoints with a label selector: %v", err)
	}
}

// TestWatchMinRevision: a watch whose min_revision this server has not
// applied takes its snapshot only once it has (read-your-writes), and
// a negative one is refused.
func TestWatchMinRevision(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ts.mustCreateService(t, webSvc())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := ts.client.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: "shop", Service: "web", MinRevision: ts.store.Revision() + 1})
	if err != nil {
		t.Fatal(err)
	}
	// The write the watch waits for arrives after it asked.
	ts.mustCreateInstance(t, webInst("web-1"))
	expectEvents(t, st, "ADDED service web scheduler=rr", "ADDED endpoint web-1 ready=true serving=true terminating=false", "SYNCED exists=true")

	// A revision this server never reaches (it restarted without its
	// state): BEHIND once the catch-up bound is over, no snapshot.
	ahead, err := ts.client.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: "shop", Service: "web", MinRevision: ts.store.Revision() + 1000})
	if err == nil {
		_, err = ahead.Recv()
	}
	if reason.Of(err) != reason.Behind {
		t.Errorf("min_revision ahead: %v, want reason BEHIND", err)
	}

	bad, err := ts.client.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: "shop", Service: "web", MinRevision: -1})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("min_revision -1: %v, want InvalidArgument", err)
	}
}
