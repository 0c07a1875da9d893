// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package watch

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/svcreg/svcreg/internal/store"
)

// BenchmarkFanOut is the hub's per-event path: one endpoint event
// appended, dispatched to every subscriber of its service, and taken by
// each (Next). allocs/op over the subscribers is the allocations per
// event per stream; the target is 0 (the event is shared, queues and
// their buffers are reused).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := quietHub(Config{History: 1024}, 0)
			defer h.Close()
			key := Key{Scope: ScopeEndpoints, Namespace: "ns", Service: "web"}
			subs := make([]*Subscriber, n)
			for i := range subs {
				sub, err := h.Subscribe([]Key{key}, Live, nil)
				if err != nil {
					b.Fatal(err)
				}
				subs[i] = sub
			}
			events := make([][]store.Event, 1024) // built ahead: the store's cost, not the hub's
			rev := int64(0)
			next := func() []store.Event {
				rev++
				ev := events[rev%int64(len(events))]
				if ev == nil {
					ev = []store.Event{epEvent(0, "web", "web-1")}
					events[rev%int64(len(events))] = ev
				}
				ev[0].Revision = rev
				return ev
			}
			for range 2048 { // warm the queues' buffers
				h.Append(next())
				drain(h, subs, rev)
			}
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				h.Append(next())
				drain(h, subs, rev)
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/float64(n), "allocs/event/stream")
		})
	}
}

// drain waits for rev to be dispatched and takes every subscriber's items.
func drain(h *Hub, subs []*Subscriber, rev int64) {
	for h.Dispatched() < rev {
		runtime.Gosched()
	}
	for _, s := range subs {
		if _, _, err := s.Next(); err != nil {
			panic(err)
		}
	}
}
