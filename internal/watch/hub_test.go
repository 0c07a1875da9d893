// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/store"
)

func quietHub(cfg Config, rev int64) *Hub {
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewHub(cfg, rev)
}

func epEvent(rev int64, svc, inst string) store.Event {
	return store.Event{Revision: rev, Type: store.Added, Kind: store.KindEndpoint, Namespace: "ns", Service: svc, Name: inst,
		After: &svcregv1.Endpoint{Namespace: "ns", Service: svc, Instance: inst}}
}

// collect waits for n items.
func collect(t *testing.T, sub *Subscriber, n int) []Item {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []Item
	for len(got) < n {
		items, _, err := sub.Wait(ctx)
		if err != nil {
			t.Fatalf("after %d of %d items: %v", len(got), n, err)
		}
		got = append(got, items...)
	}
	return got
}

func revisions(items []Item) []int64 {
	var out []int64
	for _, it := range items {
		out = append(out, it.Event.Revision)
	}
	return out
}

func TestSubscribeLiveDeliversOnlyItsKey(t *testing.T) {
	h := quietHub(Config{}, 0)
	defer h.Close()
	web, err := h.Subscribe([]Key{{ScopeEndpoints, "ns", "web"}}, Live, nil)
	if err != nil {
		t.Fatal(err)
	}
	for rev := int64(1); rev <= 6; rev++ {
		svc := []string{"web", "api"}[rev%2]
		h.Append([]store.Event{epEvent(rev, svc, fmt.Sprint("i", rev))})
	}
	got := revisions(collect(t, web, 3))
	if fmt.Sprint(got) != "[2 4 6]" {
		t.Errorf("web got revisions %v, want [2 4 6]", got)
	}
}

func TestResume(t *testing.T) {
	h := quietHub(Config{History: 8}, 10)
	defer h.Close()
	key := []Key{{ScopeEndpoints, "ns", "web"}}
	for rev := int64(11); rev <= 16; rev++ {
		h.Append([]store.Event{epEvent(rev, "web", "a"), epEvent(rev, "web", "b")})
	}
	waitDispatched(t, h, 16)
	tests := []struct {
		from    int64
		want    string
		wantErr error
	}{
		{from: 13, want: "[14 14 15 15 16 16]"},
		{from: 16, want: "[]"},
		{from: 12, want: "[13 13 14 14 15 15 16 16]"},
		{from: 11, wantErr: ErrTooOld}, // revisions 11 and 12 were evicted
		{from: 9, wantErr: ErrTooOld},
		{from: 17, wantErr: ErrFuture},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.from), func(t *testing.T) {
			sub, err := h.Subscribe(key, tt.from, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			items, _, _ := sub.Next()
			if got := fmt.Sprint(revisions(items)); got != tt.want && !(tt.want == "[]" && got == "[]") {
				t.Errorf("replayed %s, want %s", got, tt.want)
			}
		})
	}
}

func waitDispatched(t *testing.T, h *Hub, rev int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.Dispatched() < rev {
		if time.Now().After(deadline) {
			t.Fatalf("dispatched %d, want %d", h.Dispatched(), rev)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSlowSubscriberIsCutOff: a subscriber that never reads overflows and
// ends with ErrOverflow, while a reading subscriber receives everything and
// appends never wait for either (a blocking append would hang this test).
func TestSlowSubscriberIsCutOff(t *testing.T) {
	h := quietHub(Config{QueueSize: 64, History: 1 << 12}, 0)
	defer h.Close()
	key := []Key{{ScopeEndpoints, "ns", "web"}}
	slow, _ := h.Subscribe(key, Live, nil)
	fast, _ := h.Subscribe(key, Live, nil)
	const n, chunk = 1000, 8
	var slowest time.Duration
	var got []Item
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for rev := int64(1); rev <= n; rev++ {
		start := time.Now()
		h.Append([]store.Event{epEvent(rev, "web", "a")})
		slowest = max(slowest, time.Since(start))
		if rev%chunk == 0 {
			// The fast reader keeps up: it drains each chunk.
			for int64(len(got)) < rev {
				items, _, err := fast.Wait(ctx)
				if err != nil {
					t.Fatalf("fast subscriber after %d items: %v", len(got), err)
				}
				got = append(got, items...)
			}
		}
	}
	for i, it := range got {
		if it.Event.Revision != int64(i+1) {
			t.Fatalf("fast subscriber: item %d has revision %d", i, it.Event.Revision)
		}
	}
	if _, _, err := slow.Next(); !errors.Is(err, ErrOverflow) {
		t.Fatalf("slow subscriber: %v, want ErrOverflow", err)
	}
	if h.Subscribers() != 1 {
		t.Errorf("%d subscribers registered, want 1 (the slow one removed)", h.Subscribers())
	}
	t.Logf("slowest append with a stuck subscriber: %v", slowest)
}

func TestFilterAndScopes(t *testing.T) {
	h := quietHub(Config{}, 0)
	defer h.Close()
	svcEvent := store.Event{Revision: 1, Type: store.Modified, Kind: store.KindService, Namespace: "ns", Service: "web", Name: "web"}
	instEvent := store.Event{Revision: 2, Type: store.Added, Kind: store.KindInstance, Namespace: "other", Name: "i"}
	endpoints, _ := h.Subscribe([]Key{{ScopeEndpoints, "ns", "web"}}, Live, nil)
	allServices, _ := h.Subscribe([]Key{{ScopeServices, "-", ""}}, Live, nil)
	nsInstances, _ := h.Subscribe([]Key{{ScopeInstances, "ns", ""}}, Live, nil)
	allInstances, _ := h.Subscribe([]Key{{ScopeInstances, "-", ""}}, Live, func(ev *store.Event) (store.EventType, bool) {
		return store.Deleted, true
	})
	h.Append([]store.Event{svcEvent})
	h.Append([]store.Event{instEvent})
	waitDispatched(t, h, 2)
	check := func(name string, sub *Subscriber, want string) {
		items, _, _ := sub.Next()
		got := ""
		for _, it := range items {
			got += fmt.Sprintf("%d:%d ", it.Event.Revision, it.Type)
		}
		if got != want {
			t.Errorf("%s got %q, want %q", name, got, want)
		}
	}
	check("endpoints watcher", endpoints, "1:2 ")
	check("all services", allServices, "1:2 ")
	check("ns instances", nsInstances, "")
	check("all instances with filter", allInstances, "2:3 ")
}

func TestResetAndClose(t *testing.T) {
	h := quietHub(Config{}, 0)
	sub, _ := h.Subscribe([]Key{{ScopeEndpoints, "ns", "web"}}, Live, nil)
	h.Append([]store.Event{epEvent(1, "web", "a")})
	waitDispatched(t, h, 1)
	h.Reset(100)
	sub.Next() // the queued event
	if _, _, err := sub.Next(); !errors.Is(err, ErrTooOld) {
		t.Errorf("after reset: %v, want ErrTooOld", err)
	}
	if _, err := h.Subscribe(nil, 50, nil); !errors.Is(err, ErrTooOld) {
		t.Errorf("resume before the reset: %v", err)
	}
	sub2, err := h.Subscribe([]Key{{ScopeEndpoints, "ns", "web"}}, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, _, err := sub2.Next(); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
	if _, err := h.Subscribe(nil, Live, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
}

func TestBookmarksFollowTheQueue(t *testing.T) {
	h := quietHub(Config{}, 0)
	defer h.Close()
	sub, _ := h.Subscribe([]Key{{ScopeEndpoints, "ns", "web"}}, Live, nil)
	h.Append([]store.Event{epEvent(1, "web", "a")})
	h.Append([]store.Event{epEvent(2, "api", "b")}) // not for sub, but moves the revision
	waitDispatched(t, h, 2)
	h.Bookmark()
	items, bookmark, _ := sub.Next()
	if len(items) != 1 || bookmark != 0 {
		t.Fatalf("first Next: %d items, bookmark %d; want the event before any bookmark", len(items), bookmark)
	}
	if _, bookmark, _ = sub.Next(); bookmark != 2 {
		t.Fatalf("bookmark %d, want 2", bookmark)
	}
	if items, bookmark, err := sub.Next(); items != nil || bookmark != 0 || err != nil {
		t.Fatalf("a bookmark is sent once")
	}
}

func TestEncodedOnce(t *testing.T) {
	ev := &Event{}
	calls := 0
	for i := 0; i < 3; i++ {
		b, _ := ev.Encoded(func() ([]byte, error) { calls++; return []byte("x"), nil })
		if string(b) != "x" {
			t.Fatal(string(b))
		}
	}
	if calls != 1 {
		t.Errorf("encoded %d times", calls)
	}
}

// TestAdvanceWithoutEvents: a revision written by a command with no event
// (a server's address record) is one a watch may start from, and the hub
// counts it dispatched; the next event still arrives.
func TestAdvanceWithoutEvents(t *testing.T) {
	h := quietHub(Config{}, 10)
	defer h.Close()
	h.Append([]store.Event{epEvent(11, "web", "a")})
	h.Advance(12) // no event at 12
	sub, err := h.Subscribe([]Key{{Scope: ScopeEndpoints, Namespace: "ns", Service: "web"}}, 12, nil)
	if err != nil {
		t.Fatalf("Subscribe(12) after Advance(12): %v", err)
	}
	defer sub.Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.Dispatched() < 12 {
		if time.Now().After(deadline) {
			t.Fatalf("dispatched %d, want 12", h.Dispatched())
		}
		time.Sleep(time.Millisecond)
	}
	h.Append([]store.Event{epEvent(13, "web", "b")})
	if got := revisions(collect(t, sub, 1)); len(got) != 1 || got[0] != 13 {
		t.Fatalf("events %v, want [13]", got)
	}
	if _, err := h.Subscribe(nil, 14, nil); !errors.Is(err, ErrFuture) {
		t.Fatalf("Subscribe(14): %v, want ErrFuture", err)
	}
	h.Advance(11) // never backwards
	if h.Revision() != 13 {
		t.Fatalf("revision %d", h.Revision())
	}
}
