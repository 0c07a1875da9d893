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
//
// Self-preservation (docs/health.md): when more than a share of the leases
// fall due at once, the cause is far more likely on our side (a network
// partition, a registry that was unreachable) than a mass death, so the
// manager holds the expiries, shows the lapsed instances as such, and
// resumes when the share falls (renewals came back) or after a maximum
// hold: bounded, and never stuck, as Eureka's can be.
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

	preserve Preservation
	// holdSince is when self-preservation began holding expiries (zero:
	// not holding).
	holdSince time.Time
	holds     atomic.Int64 // holds begun, for metrics
	held      atomic.Int64 // lapsed leases held now, for metrics
}

// Preservation configures self-preservation.
type Preservation struct {
	// Share: expiries are held when more than this share of the leases
	// are due at once; 0 turns self-preservation off. Default 0.5.
	Share float64
	// Min is the fewest leases self-preservation considers (a handful of
	// instances lapsing together is not a storm); default 10.
	Min int
	// MaxHold bounds a hold: past it the due leases expire; default 15m.
	MaxHold time.Duration
}

// DefaultPreservation is Preservation's defaults.
var DefaultPreservation = Preservation{Share: 0.5, Min: 10, MaxHold: 15 * time.Minute}

// holdRecheck is how often a hold is reconsidered.
const holdRecheck = time.Second

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
	return &Manager{clock: clock, expire: expire, log: log, leases: map[string]*lease{}, timer: timer, active: true,
		preserve: DefaultPreservation}
}

// SetPreservation configures self-preservation (before Run).
func (m *Manager) SetPreservation(p Preservation) {
	if p.Min <= 0 {
		p.Min = DefaultPreservation.Min
	}
	if p.MaxHold <= 0 {
		p.MaxHold = DefaultPreservation.MaxHold
	}
	m.mu.Lock()
	m.preserve = p
	m.mu.Unlock()
}

// Holding reports whether self-preservation holds expiries now, since
// when, and how many lapsed leases it holds.
func (m *Manager) Holding() (since time.Time, held int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holdSince, int(m.held.Load())
}

// SelfPreservationStats are the holds begun and the leases held now.
func (m *Manager) SelfPreservationStats() (holds, held int64) { return m.holds.Load(), m.held.Load() }

// Lapsed reports when an instance's lease lapsed, when self-preservation
// holds it.
func (m *Manager) Lapsed(namespace, name string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.leases[meta.Key(namespace, name)]
	if l == nil || m.holdSince.IsZero() || l.deadline.After(m.clock.Now()) {
		return time.Time{}, false
	}
	return l.deadline, true
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
	if !m.holdSince.IsZero() {
		m.expected = now.Add(holdRecheck) // a hold is reconsidered, not spun on
	}
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
	if m.active && m.holdingLocked(now) {
		m.armLocked()
		m.mu.Unlock()
		return
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

// holdingLocked decides whether expiries are held now: it begins a hold
// when more than the share of leases is due, and ends it when at most
// half that share is (renewals came back) or the hold outlived MaxHold.
func (m *Manager) holdingLocked(now time.Time) bool {
	p := m.preserve
	if p.Share <= 0 || len(m.leases) < p.Min {
		return m.endHoldLocked(now, "too few leases")
	}
	due := 0
	for _, l := range m.leases {
		if !l.deadline.After(now) {
			due++
		}
	}
	share := float64(due) / float64(len(m.leases))
	switch {
	case m.holdSince.IsZero() && share > p.Share:
		m.holdSince = now
		m.holds.Add(1)
		m.held.Store(int64(due))
		m.log.Warn("self-preservation: too many leases lapsed at once; holding their expiry (the instances stay, marked lapsed)",
			"lapsed", due, "leases", len(m.leases), "share", share, "threshold", p.Share, "max_hold", p.MaxHold)
		return true
	case m.holdSince.IsZero():
		return false
	case now.Sub(m.holdSince) >= p.MaxHold:
		return m.endHoldLocked(now, "the hold reached its maximum")
	case share <= p.Share/2:
		return m.endHoldLocked(now, "renewals came back")
	}
	m.held.Store(int64(due))
	return true
}

// endHoldLocked ends a hold, if one runs: the leases still due then expire.
func (m *Manager) endHoldLocked(now time.Time, why string) bool {
	if !m.holdSince.IsZero() {
		m.log.Info("self-preservation: resuming lease expiry", "why", why, "held_for", now.Sub(m.holdSince), "still_lapsed", m.held.Load())
		m.holdSince = time.Time{}
		m.held.Store(0)
	}
	return false
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
