// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package lease keeps instance leases: an instance registered with
// ttl_seconds is deleted when it is not renewed within its TTL.
//
// Renewals are not changes: deadlines live in this process's memory, never
// in the store, so a renewal costs a map update and no revision or event
// (docs/durability.md, "Leases": the leader keeps deadlines; expiries are commands). An expiry
// is an ExpireInstances command conditional on the instance's revision
// when its lease was armed, so an update or a re-registration in between
// wins. Time comes from an injected clock.
package lease

import (
	"container/heap"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
)

// Expirer deletes lapsed instances (through the store's write path).
type Expirer func(refs []*storev1.InstanceRef) error

// Manager tracks the leases of the store's instances.
type Manager struct {
	clock  clock.Clock
	expire Expirer
	log    *slog.Logger

	// mu guards the leases and the timer. Observe takes it under the
	// store's write lock (a commit hook), so the expirer, which writes to
	// the store, is called only after mu is released (expireDue).
	// Functions named xxxLocked expect mu held.
	mu     sync.Mutex
	leases map[string]*lease
	queue  leaseHeap
	// timer is armed, under mu, by whichever call moves the earliest
	// deadline, so the loop never sleeps on a stale one. expected is when
	// it should fire (zero while stopped): firing much later is a pause.
	timer    clock.Timer
	expected time.Time
	stopped  bool // Run returned: the timer stays stopped

	renewals, expirations atomic.Int64 // since start, for metrics
	// active: this server may expire leases (it is the Raft leader). Every
	// server tracks them, so a new leader has them all.
	active bool
}

// pauseThreshold: a timer that fires this much later than it should have
// means the process was paused (GC, SIGSTOP, a VM migration); expiring
// then would punish instances for our own absence.
const pauseThreshold = time.Second

type lease struct {
	namespace, name string
	rev             int64 // the instance revision the lease was armed at
	ttl             time.Duration
	deadline        time.Time
	index           int // in the heap
}

// New returns a manager; feed it the store's events with Observe and run
// it with Run.
func New(clock clock.Clock, expire Expirer, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	timer := clock.NewTimer(time.Hour)
	timer.Stop()
	return &Manager{clock: clock, expire: expire, log: log, leases: map[string]*lease{}, timer: timer, active: true}
}

// SetActive starts or stops expiring. A server that becomes leader
// re-arms every lease at now + max(TTL, grace): renewals went to the old
// leader, so no deadline here can be trusted (docs/durability.md; etcd and Consul do
// the same).
func (m *Manager) SetActive(active bool, grace time.Duration) {
	m.mu.Lock()
	m.active = active
	if active {
		now := m.clock.Now()
		for _, l := range m.leases {
			l.deadline = now.Add(max(l.ttl, grace))
		}
		heap.Init(&m.queue)
	}
	m.armLocked()
	m.mu.Unlock()
}

// Reset forgets every lease and tracks the given instances' (after the
// store was replaced by a snapshot).
func (m *Manager) Reset(instances []*svcregv1.Instance) {
	m.mu.Lock()
	m.leases = map[string]*lease{}
	m.queue = nil
	now := m.clock.Now()
	for _, inst := range instances {
		if inst.GetTtlSeconds() <= 0 {
			continue
		}
		ttl := time.Duration(inst.GetTtlSeconds()) * time.Second
		l := &lease{namespace: inst.GetNamespace(), name: inst.GetName(), rev: inst.GetResourceVersion(), ttl: ttl, deadline: now.Add(ttl)}
		m.leases[meta.Key(l.namespace, l.name)] = l
		heap.Push(&m.queue, l)
	}
	m.armLocked()
	m.mu.Unlock()
}

// Observe is a store commit hook: instances with a TTL get a lease when
// created, keep their deadline (at the new revision) when updated, get a
// fresh one when their TTL changes, and lose it when deleted.
func (m *Manager) Observe(events []store.Event) {
	m.mu.Lock()
	changed := false
	for i := range events {
		ev := &events[i]
		if ev.Kind != store.KindInstance {
			continue
		}
		k := meta.Key(ev.Namespace, ev.Name)
		l := m.leases[k]
		inst, _ := ev.After.(*svcregv1.Instance)
		if inst == nil || inst.GetTtlSeconds() <= 0 {
			if l != nil {
				m.dropLocked(l)
				changed = true
			}
			continue
		}
		ttl := time.Duration(inst.GetTtlSeconds()) * time.Second
		switch {
		case l == nil:
			l = &lease{namespace: ev.Namespace, name: ev.Name, rev: inst.GetResourceVersion(), ttl: ttl, deadline: m.clock.Now().Add(ttl)}
			m.leases[k] = l
			heap.Push(&m.queue, l)
		case l.ttl != ttl:
			l.rev, l.ttl, l.deadline = inst.GetResourceVersion(), ttl, m.clock.Now().Add(ttl)
			heap.Fix(&m.queue, l.index)
		default:
			l.rev = inst.GetResourceVersion()
		}
		changed = true
	}
	if changed {
		m.armLocked()
	}
	m.mu.Unlock()
}

func (m *Manager) dropLocked(l *lease) {
	heap.Remove(&m.queue, l.index)
	delete(m.leases, meta.Key(l.namespace, l.name))
}

// armLocked points the timer at the earliest deadline, or stops it when
// nothing may expire. A deadline already past fires at once.
func (m *Manager) armLocked() {
	if !m.active || m.stopped || len(m.queue) == 0 {
		m.timer.Stop()
		m.expected = time.Time{}
		return
	}
	now := m.clock.Now()
	m.expected = m.queue[0].deadline
	if m.expected.Before(now) {
		m.expected = now
	}
	m.timer.Reset(m.expected.Sub(now))
}

// Renew extends an instance's lease by its TTL. ok is false when the
// instance has no lease (it lapsed, was deleted, or has no TTL).
func (m *Manager) Renew(namespace, name string) (deadline time.Time, ttl time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.leases[meta.Key(namespace, name)]
	if l == nil {
		return time.Time{}, 0, false
	}
	m.renewals.Add(1)
	wasFirst := l.index == 0
	l.deadline = m.clock.Now().Add(l.ttl)
	heap.Fix(&m.queue, l.index)
	if wasFirst {
		// The timer is set for this lease's old deadline: move it to the
		// new first one instead of waking for nothing. Renewing any other
		// lease leaves the timer alone, the common case.
		m.armLocked()
	}
	return l.deadline, l.ttl, true
}

// Deadline is when an instance's lease lapses unless renewed.
func (m *Manager) Deadline(namespace, name string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.leases[meta.Key(namespace, name)]; l != nil {
		return l.deadline, true
	}
	return time.Time{}, false
}

// Len is the number of live leases.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases)
}

// maxBatch bounds one ExpireInstances command.
const maxBatch = 512

// Run expires lapsed leases until ctx ends: each time the timer fires it
// expires every lease past due (at most maxBatch per command; the timer is
// re-armed at once for the rest), while active.
func (m *Manager) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			m.mu.Lock()
			m.stopped = true
			m.armLocked()
			m.mu.Unlock()
			return
		case <-m.timer.Chan():
		}
		m.expireDue()
	}
}

func (m *Manager) expireDue() {
	m.mu.Lock()
	now := m.clock.Now()
	if late := now.Sub(m.expected); !m.expected.IsZero() && late > pauseThreshold {
		m.extendDueLocked(now, late)
	}
	var due []*storev1.InstanceRef
	for m.active && len(m.queue) > 0 && len(due) < maxBatch && !m.queue[0].deadline.After(now) {
		l := m.queue[0]
		m.dropLocked(l)
		due = append(due, &storev1.InstanceRef{Namespace: l.namespace, Name: l.name, ResourceVersion: l.rev})
	}
	m.armLocked()
	m.mu.Unlock()
	if len(due) == 0 {
		return // a timer that fired before it was moved or stopped
	}
	names := make([]string, len(due))
	for i, r := range due {
		names[i] = meta.Key(r.GetNamespace(), r.GetName())
	}
	if err := m.expire(due); err != nil {
		m.log.Error("expiring leases failed", "instances", names, "err", err)
		return
	}
	m.expirations.Add(int64(len(due)))
	m.log.Info("leases lapsed: instances deleted", "instances", names)
}

// Stats are the renewals and the expirations since the manager started.
func (m *Manager) Stats() (renewals, expirations int64) {
	return m.renewals.Load(), m.expirations.Load()
}

// extendDueLocked: we were paused, and renewals sent meanwhile are still
// in our sockets. Leases that fell due get one renewal interval (a third
// of the TTL) before they expire.
func (m *Manager) extendDueLocked(now time.Time, late time.Duration) {
	extended := 0
	for _, l := range m.leases {
		if !l.deadline.After(now) {
			l.deadline = now.Add(max(l.ttl/3, pauseThreshold))
			extended++
		}
	}
	heap.Init(&m.queue)
	if extended > 0 {
		m.log.Warn("lease timer fired late: the process was paused; leases that fell due get a renewal interval", "pause", late, "leases", extended)
	}
}

// leaseHeap orders leases by deadline.
type leaseHeap []*lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*lease)
	l.index = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	l.index = -1
	return l
}
