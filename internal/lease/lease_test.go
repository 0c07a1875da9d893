// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package lease

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
	"github.com/svcreg/svcreg/internal/store"
)

type fixture struct {
	store   *store.Store
	clock   *clocktest.Fake
	leases  *Manager
	expired chan []*storev1.InstanceRef
	events  []store.Event
	uid     int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ips, _ := store.ParseIPRange("10.96.0.0/24")
	ports, _ := store.ParsePortRange("30000-30010")
	st, err := store.New(store.Config{ServiceIPs: ips, NodePorts: ports})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, clock: clocktest.NewAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), expired: make(chan []*storev1.InstanceRef, 10)}
	f.leases = New(f.clock, func(refs []*storev1.InstanceRef) error {
		_, err := st.Apply(&storev1.Command{Time: timestamppb.New(f.clock.Now()),
			Op: &storev1.Command_ExpireInstances{ExpireInstances: &storev1.ExpireInstances{Instances: refs}}})
		f.expired <- refs
		return err
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.leases.SetPreservation(Preservation{}) // off, but in TestSelfPreservation
	st.OnCommit(f.leases.Observe)
	st.OnCommit(func(evs []store.Event) { f.events = append(f.events, evs...) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.leases.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	f.apply(t, &svcregv1.Service{Name: "web", Namespace: "ns", Selector: map[string]string{"app": "web"}, Ports: []*svcregv1.ServicePort{{Port: 80}}})
	return f
}

func (f *fixture) apply(t *testing.T, op any) *store.Result {
	t.Helper()
	c := &storev1.Command{Time: timestamppb.New(f.clock.Now())}
	f.uid++
	switch op := op.(type) {
	case *svcregv1.Service:
		op.Uid = fmt.Sprint(f.uid)
		c.Op = &storev1.Command_CreateService{CreateService: &svcregv1.CreateServiceRequest{Service: op}}
	case *svcregv1.Instance:
		op.Uid = fmt.Sprint(f.uid)
		c.Op = &storev1.Command_CreateInstance{CreateInstance: &svcregv1.CreateInstanceRequest{Instance: op}}
	case *svcregv1.UpdateInstanceRequest:
		c.Op = &storev1.Command_UpdateInstance{UpdateInstance: op}
	}
	res, err := f.store.Apply(c)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) register(t *testing.T, name string, ttl int32) {
	t.Helper()
	f.apply(t, &svcregv1.Instance{Name: name, Namespace: "ns", Ip: "10.0.0.1", TtlSeconds: ttl, Labels: map[string]string{"app": "web"}})
}

// advance moves the fake clock once the lease loop sleeps on its timer.
func (f *fixture) advance(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("lease loop not waiting on a timer: %v", err)
	}
	f.clock.Advance(d)
}

// idle waits until the lease loop has handled the clock's last move and
// sleeps on its next timer.
func (f *fixture) idle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("lease loop not back on a timer: %v", err)
	}
}

func (f *fixture) waitExpired(t *testing.T) []*storev1.InstanceRef {
	t.Helper()
	select {
	case refs := <-f.expired:
		return refs
	case <-time.After(30 * time.Second): // a bound on a starved machine, not a wait
		t.Fatal("no expiry")
		return nil
	}
}

func (f *fixture) exists(name string) bool {
	_, err := f.store.Read().Instance("ns", name)
	return err == nil
}

func TestLeaseLapsesWithoutRenewal(t *testing.T) {
	f := newFixture(t)
	f.register(t, "web-1", 10)
	f.register(t, "forever", 0)
	if d, ok := f.leases.Deadline("ns", "web-1"); !ok || !d.Equal(f.clock.Now().Add(10*time.Second)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	if _, ok := f.leases.Deadline("ns", "forever"); ok {
		t.Fatalf("an instance without ttl has a lease")
	}
	f.advance(t, 9*time.Second)
	if !f.exists("web-1") {
		t.Fatal("expired early")
	}
	f.advance(t, time.Second)
	refs := f.waitExpired(t)
	if len(refs) != 1 || refs[0].GetName() != "web-1" {
		t.Fatalf("expired %v", refs)
	}
	if f.exists("web-1") || !f.exists("forever") {
		t.Fatalf("web-1 should be gone, forever kept")
	}
	eps, _ := f.store.Read().Endpoints("ns", "web")
	if len(eps) != 1 || eps[0].GetInstance() != "forever" {
		t.Fatalf("endpoints after expiry: %v", eps)
	}
	if _, _, ok := f.leases.Renew("ns", "web-1"); ok {
		t.Errorf("renewed a lapsed lease")
	}
}

func TestRenewalsAreNotChanges(t *testing.T) {
	f := newFixture(t)
	f.register(t, "web-1", 10)
	rev, events := f.store.Revision(), len(f.events)
	for i := 0; i < 30; i++ {
		f.advance(t, 5*time.Second)
		deadline, ttl, ok := f.leases.Renew("ns", "web-1")
		if !ok || ttl != 10*time.Second || !deadline.Equal(f.clock.Now().Add(ttl)) {
			t.Fatalf("renewal %d: %v %v %v", i, deadline, ttl, ok)
		}
	}
	if !f.exists("web-1") {
		t.Fatal("renewed instance expired")
	}
	if f.store.Revision() != rev || len(f.events) != events {
		t.Errorf("renewals changed the store: revision %d -> %d, %d new events", rev, f.store.Revision(), len(f.events)-events)
	}
}

func TestUpdatesKeepTheDeadlineAndTTLChangesRearm(t *testing.T) {
	f := newFixture(t)
	f.register(t, "web-1", 10)
	f.advance(t, 6*time.Second)
	// A weight change is not a renewal: the deadline stays at t=10s.
	f.apply(t, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: "ns", Weight: ptr(uint32(5))},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"weight"}}})
	f.advance(t, 4*time.Second)
	refs := f.waitExpired(t)
	if f.exists("web-1") {
		t.Fatalf("updated instance outlived its lease (expired %v)", refs)
	}
	// A TTL change re-arms from now.
	f.register(t, "web-2", 10)
	f.advance(t, 8*time.Second)
	f.apply(t, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-2", Namespace: "ns", TtlSeconds: 30},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ttl_seconds"}}})
	f.advance(t, 29*time.Second)
	if !f.exists("web-2") {
		t.Fatal("expired before the new TTL")
	}
	f.advance(t, time.Second)
	f.waitExpired(t)
	if f.exists("web-2") {
		t.Fatal("not expired after the new TTL")
	}
}

func TestExpiryIsConditionalOnRevision(t *testing.T) {
	f := newFixture(t)
	res := f.apply(t, &svcregv1.Instance{Name: "web-1", Namespace: "ns", Ip: "10.0.0.1", TtlSeconds: 10})
	stale := res.Instance.GetResourceVersion()
	f.apply(t, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: "ns", Weight: ptr(uint32(2))},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"weight"}}})
	_, err := f.store.Apply(&storev1.Command{Op: &storev1.Command_ExpireInstances{ExpireInstances: &storev1.ExpireInstances{
		Instances: []*storev1.InstanceRef{{Namespace: "ns", Name: "web-1", ResourceVersion: stale}, {Namespace: "ns", Name: "gone", ResourceVersion: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !f.exists("web-1") {
		t.Fatal("an expiry at a stale revision deleted the instance")
	}
}

func ptr[T any](v T) *T { return &v }

// TestPauseDoesNotExpire: when the timer fires long after it should have
// (the process was paused), due leases get a renewal interval instead of
// expiring at once; then they lapse if nobody renews.
func TestPauseDoesNotExpire(t *testing.T) {
	f := newFixture(t)
	f.register(t, "web-1", 9)
	f.advance(t, 30*time.Second) // 21 s late: a pause
	f.idle(t)
	if !f.exists("web-1") {
		t.Fatal("expired right after a pause")
	}
	if d, _ := f.leases.Deadline("ns", "web-1"); !d.Equal(f.clock.Now().Add(3 * time.Second)) {
		t.Errorf("deadline %v, want now + ttl/3", d)
	}
	f.advance(t, 3*time.Second)
	f.waitExpired(t)
	if f.exists("web-1") {
		t.Fatal("not expired after the renewal interval")
	}
}

func TestInactiveManagerNeverExpires(t *testing.T) {
	f := newFixture(t)
	f.leases.SetActive(false, 0)
	f.register(t, "web-1", 5)
	f.clock.Advance(time.Minute)
	// An inactive manager arms no timer: nothing to wait for. A lapse, if
	// one were wrongly due, would show as an expiry.
	select {
	case refs := <-f.expired:
		t.Fatalf("a follower expired %v", refs)
	case <-time.After(50 * time.Millisecond):
	}
	if !f.exists("web-1") {
		t.Fatal("a follower expired a lease")
	}
	f.leases.SetActive(true, 20*time.Second) // promoted: re-armed at now + max(ttl, grace)
	if d, _ := f.leases.Deadline("ns", "web-1"); !d.Equal(f.clock.Now().Add(20 * time.Second)) {
		t.Errorf("re-armed deadline %v, want now + grace", d)
	}
}

// TestStoppedLoopLeavesNoTimer: once Run returns, its timer is stopped and
// stays stopped (a fake clock shared by servers in a test counts it).
func TestStoppedLoopLeavesNoTimer(t *testing.T) {
	clock := clocktest.New()
	m := New(clock, func([]*storev1.InstanceRef) error { return nil }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.Reset([]*svcregv1.Instance{{Namespace: "ns", Name: "a", TtlSeconds: 10}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	cancel()
	<-done
	m.Reset([]*svcregv1.Instance{{Namespace: "ns", Name: "b", TtlSeconds: 10}})
	m.SetActive(true, time.Second)
	// Nothing runs any more, so the count of armed timers is final:
	// BlockUntil(1) returns at once if one is, and runs out its short
	// context (a wait that can only pass, never flake) if none is.
	wait, cancelWait := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelWait()
	if err := clock.BlockUntilContext(wait, 1); err == nil {
		t.Fatal("a timer is armed after Run returned")
	}
}

// TestSelfPreservation: when 60% of the leases lapse at once the manager
// holds their expiry, shows them lapsed, and resumes when renewals come
// back (the rest expire then); a hold nothing ends lasts MaxHold at most.
func TestSelfPreservation(t *testing.T) {
	for _, tt := range []struct {
		name     string
		renewals bool // 10 of the 12 lapsed come back
	}{{"renewals come back", true}, {"nobody comes back: the hold ends", false}} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.leases.SetPreservation(Preservation{Share: 0.5, Min: 10, MaxHold: time.Minute})
			for i := range 20 {
				f.register(t, fmt.Sprintf("i-%d", i), 10)
			}
			renew := func(from, to int) {
				for i := from; i < to; i++ {
					if _, _, ok := f.leases.Renew("ns", fmt.Sprintf("i-%d", i)); !ok {
						t.Fatalf("i-%d has no lease", i)
					}
				}
			}
			// 8 keep renewing; 12 (60%) stop.
			f.advance(t, 6*time.Second)
			renew(0, 8)
			f.advance(t, 5*time.Second) // the 12 are due: a storm
			f.idle(t)
			if since, held := f.leases.Holding(); since.IsZero() || held != 12 {
				t.Fatalf("holding since %v, %d held; want a hold of 12", since, held)
			}
			if _, ok := f.leases.Lapsed("ns", "i-10"); !ok {
				t.Fatal("a held lease is not shown lapsed")
			}
			if _, ok := f.leases.Lapsed("ns", "i-0"); ok {
				t.Fatal("a renewed lease is shown lapsed")
			}
			select {
			case refs := <-f.expired:
				t.Fatalf("expired during the hold: %v", refs)
			default:
			}
			if tt.renewals {
				renew(0, 18) // 10 of the 12 come back: 2 of 20 due
				f.advance(t, time.Second)
				refs := f.waitExpired(t)
				if len(refs) != 2 || f.exists("i-18") || f.exists("i-19") || !f.exists("i-10") {
					t.Fatalf("after the hold: expired %v", refs)
				}
			} else {
				for range 70 {
					renew(0, 8)
					f.advance(t, time.Second)
					if since, _ := f.leases.Holding(); since.IsZero() {
						break
					}
				}
				refs := f.waitExpired(t)
				if len(refs) != 12 {
					t.Fatalf("after the maximum hold: expired %d, want the 12", len(refs))
				}
			}
			if since, _ := f.leases.Holding(); !since.IsZero() {
				t.Fatal("still holding")
			}
			holds, _ := f.leases.SelfPreservationStats()
			if holds != 1 {
				t.Fatalf("%d holds", holds)
			}
		})
	}
}
