// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package store is the registry's state: services, instances, derived
// endpoints and allocations in go-memdb, shaped as Consul's and Nomad's
// state stores are:
//
//   - txn.go: the write transaction, which records each change itself;
//   - apply.go: the one write path, Apply, dispatching a command to its
//     xTxn helper (services.go, instances.go, manual_endpoints.go, ...);
//     helpers compose inside one transaction and never commit;
//   - check.go: what runs before a command is proposed: stateless
//     validation and defaulting, and the leader's precheck against the
//     current state, so that a rejected request never becomes a log entry;
//   - query.go: reads, all through one idiom: Read opens a lock-free
//     ReadTxn at one revision and its methods return (value, error).
//
// Every write is a command applied in one memdb write transaction that
// derives endpoints, allocates and bumps the global revision, so that the
// store can be the state machine of a replicated log. Objects are never
// mutated after insert: a write clones, modifies and inserts.
package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"
)

// Config are the store's allocation ranges and limits.
type Config struct {
	ServiceIPs IPRange
	NodePorts  PortRange
	// Limits bound what one object may hold; the zero value means
	// DefaultLimits.
	Limits Limits
}

// Store holds the registry state.
type Store struct {
	cfg Config
	// db is replaced whole by Restore; readers load it once per read.
	db atomic.Pointer[memdb.MemDB]
	// mu serialises writers; memdb admits one write transaction at a time
	// anyway, and the lock also orders what happens after commit.
	//
	// Lock order: mu is first. Commit, token and restore hooks run with it
	// held (or, for restore hooks, right after) and take their own locks
	// (watch.Hub.mu, lease.Manager.mu, xds.Feed.mu, the servers' session
	// and stream tables); so no code may call a Store write (Apply,
	// Restore, the On* registrations) while holding any of those.
	mu sync.Mutex
	// requests is the replicated request-id log (guarded by mu).
	requests     *requestLog
	hooks        []CommitHook
	revHooks     []func(rev int64)
	restoreHooks []func(rev int64)
	tokenHooks   []func()
	// applied is closed and replaced at each new revision (WaitRevision).
	applied chan struct{}
}

// New returns an empty store.
func New(cfg Config) (*Store, error) {
	if cfg.ServiceIPs.size == 0 {
		return nil, fmt.Errorf("store: no service IP range")
	}
	if cfg.NodePorts.Size == 0 {
		return nil, fmt.Errorf("store: no node port range")
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, applied: make(chan struct{}), requests: newRequestLog()}
	s.db.Store(db)
	return s, nil
}

// Limits are the store's bounds on one object.
func (s *Store) Limits() Limits { return s.cfg.Limits }

// Revision is the current store revision.
func (s *Store) Revision() int64 {
	rev, _ := revisionTxn(s.db.Load().Txn(false))
	return rev
}

// WaitRevision waits until the store has reached revision rev (a follower
// catching up with a client's last write) or ctx ends. When it returns nil
// the commit hooks of rev have run too (the watch hub has its events): a
// commit is visible to readers a moment before its hooks run, under the
// write lock this takes.
func (s *Store) WaitRevision(ctx context.Context, rev int64) error {
	for {
		s.mu.Lock()
		ch := s.applied
		reached := s.Revision() >= rev
		s.mu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CommitHook receives the events of each committed command, in revision
// order, while the store's write lock is held: it must be quick and never
// block (append to a log, update a map). It is where watches and leases
// learn about changes without a write ever waiting on a reader.
type CommitHook func(events []Event)

// OnCommit registers a hook. Register hooks before the first write.
func (s *Store) OnCommit(h CommitHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, h)
}

// OnRevision registers a hook called with the store's revision after each
// commit, once its commit hooks ran, whether or not it had events (a
// server's address record, a token have none). Like commit hooks it runs
// under the write lock and must not block.
func (s *Store) OnRevision(h func(rev int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revHooks = append(s.revHooks, h)
}

// OnTokenChange registers a hook called after a commit that created or
// deleted a token, and after a restore (which may replace them all): the
// servers end the streams whose token is gone. Like commit hooks it runs
// under the write lock and must not block.
func (s *Store) OnTokenChange(h func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenHooks = append(s.tokenHooks, h)
}

// OnRestore registers a hook called with the new revision after a restore.
func (s *Store) OnRestore(h func(rev int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restoreHooks = append(s.restoreHooks, h)
}
