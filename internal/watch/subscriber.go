// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package watch

import (
	"context"
	"sync"

	"github.com/svcreg/svcreg/internal/store"
)

// Item is one queued event and the type the subscriber sees it as.
type Item struct {
	Type  store.EventType
	Event *Event
}

// Subscriber is one watcher's queue. The dispatcher fills it; the watcher's
// goroutine drains it with Next.
type Subscriber struct {
	hub    *Hub
	keys   []Key
	filter Filter
	limit  int
	notify chan struct{} // 1-buffered: items arrived or the subscription ended
	// after: events at or before it are not this subscriber's (it started
	// from a revision the dispatcher had not reached yet).
	after int64

	// mu guards the queue; it is last in the hub's lock order (taken by
	// the dispatcher under Hub.dmu) and nothing is called while it is held.
	mu       sync.Mutex
	queue    []Item
	spare    []Item // the buffer Next handed out last time, reused
	bookmark int64  // a bookmark is due at this revision (0: none)
	err      error
}

// offer queues ev; on overflow the subscriber fails. It never blocks, and
// it does not run the filter: a filter's cost (a label selector with many
// requirements) is paid by its own watcher's goroutine, in Next, never by
// the dispatcher that serves every watcher. Called by the dispatcher (or
// Subscribe) with h.dmu held. It reports whether ev was queued.
func (s *Subscriber) offer(ev *Event) bool {
	if ev.Revision <= s.after {
		return false
	}
	typ := ev.Type
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	if len(s.queue) >= s.limit {
		s.err = ErrOverflow
		s.queue = nil
		s.mu.Unlock()
		s.hub.log.Warn("watcher fell behind; closing its stream", "queue", s.limit, "keys", s.keys)
		s.hub.cut.Add(1)
		s.hub.unsubscribeLocked(s)
		s.wakeUp()
		return false
	}
	// ev is immutable and shared by every subscriber of this dispatch.
	s.queue = append(s.queue, Item{Type: typ, Event: ev})
	s.mu.Unlock()
	s.wakeUp()
	return true
}

// queued is the length of the subscriber's queue.
func (s *Subscriber) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *Subscriber) requestBookmark(rev int64) {
	s.mu.Lock()
	s.bookmark = max(s.bookmark, rev)
	s.mu.Unlock()
	s.wakeUp()
}

func (s *Subscriber) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.wakeUp()
}

func (s *Subscriber) wakeUp() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Ready is signalled when Next may have something to return.
func (s *Subscriber) Ready() <-chan struct{} { return s.notify }

// Next returns the queued items the filter wants, as the types it gives
// them, without waiting; when none are queued, a due bookmark's revision
// (every event up to it has been returned); or the error that ended the
// subscription. All zero means nothing to do. The slice is valid until
// the next call.
func (s *Subscriber) Next() (items []Item, bookmark int64, err error) {
	s.mu.Lock()
	if len(s.queue) > 0 {
		items = s.queue
		s.queue, s.spare = s.spare[:0], items
		// Everything queued is taken: a pending wake-up for it would only
		// cost the caller an empty round.
		select {
		case <-s.notify:
		default:
		}
		s.mu.Unlock()
		return s.filtered(items), 0, nil
	}
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, 0, s.err
	}
	if s.bookmark > 0 {
		bookmark, s.bookmark = s.bookmark, 0
		return nil, bookmark, nil
	}
	// Idle: give the buffers back, so an idle watcher costs little memory.
	if cap(s.spare) > 64 {
		s.spare = nil
	}
	return nil, 0, nil
}

// filtered keeps the items the filter wants, in place (this subscriber
// owns the slice).
func (s *Subscriber) filtered(items []Item) []Item {
	if s.filter == nil {
		return items
	}
	out := items[:0]
	for _, it := range items {
		if typ, ok := s.filter(&it.Event.Event); ok {
			it.Type = typ
			out = append(out, it)
		}
	}
	return out
}

// Wait blocks until items or a bookmark arrive, the subscription ends or
// ctx is done.
func (s *Subscriber) Wait(ctx context.Context) ([]Item, int64, error) {
	done := ctx.Done()
	for {
		items, bookmark, err := s.Next()
		if len(items) > 0 || bookmark > 0 || err != nil {
			return items, bookmark, err
		}
		select {
		case <-s.notify:
		case <-done:
			return nil, 0, ctx.Err()
		}
	}
}

// Close unregisters the subscriber.
func (s *Subscriber) Close() {
	s.hub.dmu.Lock()
	s.hub.unsubscribeLocked(s)
	s.hub.dmu.Unlock()
	s.fail(ErrClosed)
}
