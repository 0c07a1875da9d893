// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
)

// TestLeases registers an instance with a 10 s TTL on a fake clock, renews
// it over gRPC, REST and a KeepAlive stream without producing events, then
// lets it lapse: its endpoint disappears with a DELETED event.
func TestLeases(t *testing.T) {
	clock := clocktest.NewAt(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	ts := startServer(t, Config{Clock: clock, BookmarkInterval: time.Hour})
	ctx := context.Background()
	ts.mustCreateService(t, webSvc())
	inst := webInst("web-1")
	inst.TtlSeconds = 10
	created := ts.mustCreateInstance(t, inst)
	if got := created.GetLeaseExpireTime().AsTime(); !got.Equal(clock.Now().Add(10 * time.Second)) {
		t.Errorf("lease expiry %v, want now+10s", got)
	}
	st, cancel := watchEndpoints(t, ts, "shop", "web", 0)
	defer cancel()
	expectEvents(t, st, "ADDED service web scheduler=rr", "ADDED endpoint web-1 ready=true serving=true terminating=false", "SYNCED exists=true")
	rev := ts.store.Revision()

	advance := func(d time.Duration) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		// The lease loop's timer and the watch's bookmark ticker.
		if err := clock.BlockUntilContext(wctx, 2); err != nil {
			t.Fatal(err)
		}
		clock.Advance(d)
	}

	advance(8 * time.Second)
	resp, err := ts.client.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: "shop", Name: "web-1"})
	if err != nil || !resp.GetLeaseExpireTime().AsTime().Equal(clock.Now().Add(10*time.Second)) || resp.GetTtlSeconds() != 10 {
		t.Fatalf("renew: %v %v", resp, err)
	}
	advance(8 * time.Second)
	httpResp, err := http.Post(ts.base+"/v1/namespaces/shop/instances/web-1:renew", "application/json", nil)
	if err != nil || httpResp.StatusCode != 200 {
		t.Fatalf("REST renew: %v %v", httpResp, err)
	}
	io.Copy(io.Discard, httpResp.Body)
	httpResp.Body.Close()
	advance(8 * time.Second)
	ka, err := ts.client.KeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "nope"} {
		if err := ka.Send(&svcregv1.KeepAliveRequest{Namespace: "shop", Name: name}); err != nil {
			t.Fatal(err)
		}
		r, err := ka.Recv()
		if err != nil || r.GetName() != name || r.GetFound() != (name == "web-1") {
			t.Fatalf("keepalive %s: %v %v", name, r, err)
		}
	}
	ka.CloseSend()
	got, err := ts.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: "web-1"})
	if err != nil || !got.GetInstance().GetLeaseExpireTime().AsTime().Equal(clock.Now().Add(10*time.Second)) {
		t.Fatalf("GetInstance after renewals: %v %v", got, err)
	}
	if ts.store.Revision() != rev {
		t.Errorf("renewals moved the revision %d -> %d", rev, ts.store.Revision())
	}

	advance(10 * time.Second) // lapses
	expectEvents(t, st, "DELETED endpoint web-1 ready=true serving=true terminating=false")
	_, err = ts.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: "web-1"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("instance after expiry: %v", err)
	}
	_, err = ts.client.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: "shop", Name: "web-1"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("renew after expiry: %v", err)
	}
	ts.mustCreateInstance(t, webInst("no-lease"))
	_, err = ts.client.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: "shop", Name: "no-lease"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("renew without a lease: %v", err)
	}
}

// TestLeaseStorm: when most leases lapse at once the server keeps the
// instances and their endpoints, shows them lapsed, and when the
// renewals come back it clears the mark and expires only those still
// missing.
func TestLeaseStorm(t *testing.T) {
	clk := clocktest.NewAt(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	ts := startServer(t, Config{Clock: clk, LeaseGrace: time.Second})
	ctx := context.Background()
	ts.mustCreateService(t, webSvc())
	for i := range 10 {
		inst := webInst(fmt.Sprintf("web-%d", i))
		inst.TtlSeconds = 10
		ts.mustCreateInstance(t, inst)
	}
	clk.Advance(11 * time.Second) // every lease lapses: a storm
	lapsed := func(name string) bool {
		resp, err := ts.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: name})
		return err == nil && resp.GetInstance().GetLeaseLapsedTime() != nil
	}
	waitFor(t, "the lapsed leases to be held", 10*time.Second, func() bool { return lapsed("web-0") })
	eps, err := ts.client.ListEndpoints(ctx, &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "web"})
	if err != nil || len(eps.GetEndpoints()) != 10 {
		t.Fatalf("endpoints during the hold: %d, %v", len(eps.GetEndpoints()), err)
	}
	for i := range 9 { // all but web-9 come back
		if _, err := ts.client.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: "shop", Name: fmt.Sprintf("web-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the hold to end and web-9 to expire", 10*time.Second, func() bool {
		clk.Advance(time.Second)
		_, err := ts.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: "web-9"})
		return err != nil
	})
	if lapsed("web-0") {
		t.Fatal("a renewed instance still shows lapsed")
	}
}
