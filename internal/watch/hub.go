// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package watch fans the store's change feed out to watchers
// (docs/architecture.md, "The read and watch path").
//
// Writers only append: the store's commit hook copies a command's events
// into a bounded history ring and nudges the dispatcher, which is O(events)
// and never waits on a reader. One dispatcher goroutine moves new events to
// the subscribers interested in them, found through an index by key (kind,
// namespace, service), so an event costs O(interested subscribers) and no
// more. Each subscriber has a bounded queue; one that falls behind is cut
// off with ErrOverflow and resumes by revision, so a slow reader never
// slows the writer or the other readers (Linkerd's destination service
// does the same with its 100-update queues).
package watch

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
)

// Errors a subscription ends with.
var (
	// ErrTooOld: the requested revision is older than the history (the
	// client lists again; Kubernetes' 410 Gone).
	ErrTooOld = errors.New("resource version too old")
	// ErrFuture: the requested revision has not happened.
	ErrFuture = errors.New("resource version in the future")
	// ErrOverflow: the subscriber fell too far behind.
	ErrOverflow = errors.New("watcher fell behind")
	// ErrClosed: the hub was closed (server shutdown or state reset).
	ErrClosed = errors.New("watch closed")
)

// Scope is what a subscriber is interested in.
type Scope uint8

// Scopes index subscribers.
const (
	// ScopeEndpoints: the endpoints of one service, and that service.
	ScopeEndpoints Scope = iota + 1
	// ScopeServices: the services of a namespace ("-": every namespace).
	ScopeServices
	// ScopeInstances: the instances of a namespace ("-": every namespace).
	ScopeInstances
	// ScopeAllEndpoints: the endpoints of every service of a namespace
	// ("-": every namespace).
	ScopeAllEndpoints
)

// Key indexes subscribers.
type Key struct {
	Scope     Scope
	Namespace string
	Service   string // ScopeEndpoints only
}

// keysOf lists the keys whose subscribers may want ev.
func keysOf(ev *store.Event, dst []Key) []Key {
	switch ev.Kind {
	case store.KindEndpoint:
		return append(dst, Key{ScopeEndpoints, ev.Namespace, ev.Service},
			Key{ScopeAllEndpoints, ev.Namespace, ""}, Key{ScopeAllEndpoints, meta.AllNamespaces, ""})
	case store.KindService:
		return append(dst, Key{ScopeEndpoints, ev.Namespace, ev.Service},
			Key{ScopeServices, ev.Namespace, ""}, Key{ScopeServices, meta.AllNamespaces, ""})
	case store.KindInstance:
		return append(dst, Key{ScopeInstances, ev.Namespace, ""}, Key{ScopeInstances, meta.AllNamespaces, ""})
	}
	return dst
}

// Event is a store event as the hub shares it between subscribers: one
// value per event, immutable but for a cache of its encoding.
type Event struct {
	store.Event
	encoded atomic.Pointer[[]byte]
}

// Encoded returns the event's wire form, made by encode once and then
// shared by every subscriber that sends the same message (so that 10,000
// watchers of a service cost one marshal per change, not 10,000).
func (e *Event) Encoded(encode func() ([]byte, error)) ([]byte, error) {
	if b := e.encoded.Load(); b != nil {
		return *b, nil
	}
	b, err := encode()
	if err != nil {
		return nil, err
	}
	e.encoded.Store(&b)
	return b, nil
}

// Filter decides whether a subscriber gets an event and as what type (a
// label watch turns a modification that stops matching into a deletion).
// It runs on the subscriber's own goroutine (Next), never the dispatcher.
type Filter func(ev *store.Event) (store.EventType, bool)

// Config sizes a hub.
type Config struct {
	History   int // events kept for resuming; default 10000
	QueueSize int // events a subscriber may fall behind; default 4096
	Logger    *slog.Logger
}

// Hub is the history and the dispatcher.
type Hub struct {
	log       *slog.Logger
	queueSize int

	// mu guards the history. Append takes it under the store's write lock
	// (a commit hook), so it is held only to copy events in or out.
	// Lock order: store.Store.mu, then dmu, then mu, then a
	// Subscriber's mu; functions named xxxLocked expect dmu held.
	mu        sync.Mutex
	ring      []store.Event // history, ring[seq % len(ring)]
	head      uint64        // sequence number of the next event appended
	compacted int64         // history may lack events of revisions <= compacted
	latest    int64         // revision of the newest event
	closed    bool

	wake chan struct{} // 1-buffered nudge to the dispatcher
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the dispatcher exits

	dmu        sync.Mutex // the dispatcher's: cursor and index
	cursor     uint64     // next sequence number to dispatch
	subs       map[Key]map[*Subscriber]struct{}
	dispatched atomic.Int64  // every event of revisions <= dispatched is in subscribers' queues
	fannedOut  atomic.Int64  // events queued to subscribers, ever
	cut        atomic.Int64  // subscribers cut off for falling behind, ever
	roundDone  chan struct{} // closed after the next dispatch round; guarded by mu, made on demand
}

// NewHub returns a hub whose history starts at revision rev (the store's
// revision now): resuming from older revisions is too old.
func NewHub(cfg Config, rev int64) *Hub {
	if cfg.History <= 0 {
		cfg.History = 10000
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Hub{
		log:       cfg.Logger,
		queueSize: cfg.QueueSize,
		ring:      make([]store.Event, cfg.History),
		compacted: rev,
		latest:    rev,
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		subs:      map[Key]map[*Subscriber]struct{}{},
	}
	h.dispatched.Store(rev)
	go h.dispatch()
	return h
}

// Append is the store's commit hook: it records a command's events and
// nudges the dispatcher. It never blocks on subscribers.
func (h *Hub) Append(events []store.Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	for _, ev := range events {
		slot := &h.ring[h.head%uint64(len(h.ring))]
		if slot.Revision > h.compacted {
			h.compacted = slot.Revision
		}
		*slot = ev
		h.head++
	}
	h.latest = events[len(events)-1].Revision
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Advance tells the hub the store reached rev through a command with no
// event of its own (a server's address record, a token): a watch may
// start from it, and nothing is dispatched. A store revision hook.
func (h *Hub) Advance(rev int64) {
	h.mu.Lock()
	if h.closed || rev <= h.latest {
		h.mu.Unlock()
		return
	}
	h.latest = rev
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Revision is the newest revision the hub has seen.
func (h *Hub) Revision() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latest
}

// Dispatched is the revision up to which every event is in its
// subscribers' queues.
func (h *Hub) Dispatched() int64 { return h.dispatched.Load() }

// AfterRound returns a channel closed when the dispatcher next finishes a
// round (and Dispatched may have moved). A subscriber that needs whole
// revisions (a commit's events can straddle two of its Next calls) reads
// Dispatched, then Next: every event at or below what it read is then in
// hand, and this channel says when to look again.
func (h *Hub) AfterRound() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.roundDone == nil {
		h.roundDone = make(chan struct{})
	}
	return h.roundDone
}

func (h *Hub) endRound() {
	h.mu.Lock()
	if h.roundDone != nil {
		close(h.roundDone)
		h.roundDone = nil
	}
	h.mu.Unlock()
}

func (h *Hub) dispatch() {
	defer close(h.done)
	var keys []Key
	for {
		select {
		case <-h.wake:
		case <-h.stop:
			return
		}
		h.dmu.Lock()
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			h.dmu.Unlock()
			return
		}
		lost := h.head-h.cursor > uint64(len(h.ring))
		if lost {
			// The writer lapped the dispatcher: events are gone before
			// anyone saw them. Cut every subscriber; they resume by
			// revision (or relist when that is too old).
			h.cursor = h.head - uint64(len(h.ring))
		}
		// A fresh copy per round: subscribers keep pointers into it, and
		// the history slots are reused.
		batch := make([]Event, h.head-h.cursor)
		for i := range batch {
			batch[i].Event = h.ring[(h.cursor+uint64(i))%uint64(len(h.ring))]
		}
		h.cursor = h.head
		h.mu.Unlock()
		if lost {
			h.log.Warn("watch dispatcher fell behind the history; closing every watch")
			h.cutAllLocked(ErrOverflow)
		}
		queued := int64(0)
		for i := range batch {
			ev := &batch[i]
			keys = keysOf(&ev.Event, keys[:0])
			for _, k := range keys {
				for sub := range h.subs[k] {
					if sub.offer(ev) {
						queued++
					}
				}
			}
		}
		h.fannedOut.Add(queued)
		h.mu.Lock()
		latest := h.latest // every event up to it was in this batch or an earlier one
		h.mu.Unlock()
		if len(batch) > 0 || latest > h.dispatched.Load() {
			h.dispatched.Store(max(latest, h.dispatched.Load()))
		}
		h.endRound()
		h.dmu.Unlock()
	}
}

// Live, as Subscribe's from, subscribes to the changes after the events
// already dispatched: take a snapshot after subscribing, and skip the
// events at or below the snapshot's revision.
const Live int64 = -1

// Subscribe registers a subscriber for the events with revisions after
// from that match keys and filter. Events of the history between from and
// now are queued first.
func (h *Hub) Subscribe(keys []Key, from int64, filter Filter) (*Subscriber, error) {
	h.dmu.Lock()
	defer h.dmu.Unlock()
	sub := &Subscriber{hub: h, keys: keys, filter: filter, limit: h.queueSize, notify: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if from != Live {
		sub.after = from
		switch {
		case from < h.compacted:
			h.mu.Unlock()
			return nil, fmt.Errorf("%w: %d is older than the oldest revision kept, %d; list again", ErrTooOld, from, h.compacted+1)
		case from > h.latest:
			h.mu.Unlock()
			return nil, fmt.Errorf("%w: %d is after the current revision %d", ErrFuture, from, h.latest)
		}
		// Replay what was dispatched after from; the dispatcher delivers
		// the rest. The history is sorted by revision.
		size := uint64(len(h.ring))
		oldest := uint64(0)
		if h.cursor > size {
			oldest = h.cursor - size
		}
		n := int(h.cursor - oldest)
		first := oldest + uint64(sort.Search(n, func(i int) bool {
			return h.ring[(oldest+uint64(i))%size].Revision > from
		}))
		var keyBuf []Key
		for seq := first; seq < h.cursor; seq++ {
			ev := &Event{Event: h.ring[seq%size]}
			keyBuf = keysOf(&ev.Event, keyBuf[:0])
			for _, k := range keyBuf {
				if containsKey(keys, k) {
					sub.offer(ev)
					break
				}
			}
		}
	}
	h.mu.Unlock()
	if sub.err != nil {
		return nil, sub.err
	}
	for _, k := range keys {
		m := h.subs[k]
		if m == nil {
			m = map[*Subscriber]struct{}{}
			h.subs[k] = m
		}
		m[sub] = struct{}{}
	}
	return sub, nil
}

func containsKey(keys []Key, k Key) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// unsubscribeLocked removes sub from the index; h.dmu is held.
func (h *Hub) unsubscribeLocked(sub *Subscriber) {
	for _, k := range sub.keys {
		if m := h.subs[k]; m != nil {
			delete(m, sub)
			if len(m) == 0 {
				delete(h.subs, k)
			}
		}
	}
}

func (h *Hub) cutAllLocked(err error) {
	for _, m := range h.subs {
		for sub := range m {
			sub.fail(err)
		}
	}
	clear(h.subs)
}

// Stats are the hub's counters since it started: events queued to
// subscribers, and subscribers cut off for falling behind.
func (h *Hub) Stats() (fannedOut, cut int64) { return h.fannedOut.Load(), h.cut.Load() }

// QueueDepths are the total and the longest of the subscribers' queues.
func (h *Hub) QueueDepths() (total, longest int) {
	h.dmu.Lock()
	defer h.dmu.Unlock()
	seen := map[*Subscriber]bool{}
	for _, subs := range h.subs {
		for sub := range subs {
			if !seen[sub] {
				seen[sub] = true
				n := sub.queued()
				total, longest = total+n, max(longest, n)
			}
		}
	}
	return total, longest
}

// Subscribers is the number of registered subscribers (for tests and
// metrics).
func (h *Hub) Subscribers() int {
	h.dmu.Lock()
	defer h.dmu.Unlock()
	seen := map[*Subscriber]bool{}
	for _, m := range h.subs {
		for s := range m {
			seen[s] = true
		}
	}
	return len(seen)
}

// Reset forgets the history (after the store was replaced, as by a
// snapshot restore): every subscriber ends with ErrTooOld and must list
// again; resuming from before rev is too old.
func (h *Hub) Reset(rev int64) {
	h.dmu.Lock()
	defer h.dmu.Unlock()
	h.mu.Lock()
	clear(h.ring)
	h.cursor, h.head = 0, 0
	h.compacted, h.latest = rev, rev
	h.mu.Unlock()
	h.dispatched.Store(rev)
	h.cutAllLocked(fmt.Errorf("%w: the registry state was replaced; list again", ErrTooOld))
	h.endRound()
}

// Close ends every subscription with ErrClosed and stops the dispatcher.
func (h *Hub) Close() {
	h.dmu.Lock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.dmu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	h.cutAllLocked(ErrClosed)
	h.endRound()
	h.dmu.Unlock()
	close(h.stop)
	<-h.done
}

// Bookmark asks every subscriber to send a BOOKMARK: everything up to the
// revision dispatched now is in its queue, so once its queue is drained it
// may say so. One goroutine calls this every bookmark interval, instead of
// a timer per watcher.
func (h *Hub) Bookmark() {
	h.dmu.Lock()
	defer h.dmu.Unlock()
	h.bookmarkLocked()
}

func (h *Hub) bookmarkLocked() {
	d := h.dispatched.Load()
	for _, m := range h.subs {
		for sub := range m {
			sub.requestBookmark(d)
		}
	}
}
