// Package store is the registry's state: services, instances, derived
// endpoints and allocations in go-memdb. Every write is a command applied
// by Apply in one write transaction that validates, derives endpoints,
// allocates and bumps the global revision, so that the store can be the
// state machine of a replicated log (Consul and Nomad run memdb the same
// way). Readers use memdb's lock-free snapshots. Objects are never mutated
// after insert: a write clones, modifies and inserts.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/labels"
)

// Config are the store's allocation ranges.
type Config struct {
	ServiceIPs IPRange
	NodePorts  PortRange
}

// Store holds the registry state.
type Store struct {
	cfg Config
	// db is replaced whole by Restore; readers load it once per read.
	db atomic.Pointer[memdb.MemDB]
	// mu serialises writers; memdb admits one write transaction at a time
	// anyway, and the lock also orders what happens after commit.
	mu           sync.Mutex
	hooks        []CommitHook
	restoreHooks []func(rev int64)
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
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, applied: make(chan struct{})}
	s.db.Store(db)
	return s, nil
}

// Result is what a command produced.
type Result struct {
	// Revision is the store revision after the command: a new one when
	// anything changed, the current one otherwise.
	Revision  int64
	Service   *svcregv1.Service
	Instance  *svcregv1.Instance
	Endpoints []*svcregv1.Endpoint
}

// applyCtx is what a command's transaction helpers share.
type applyCtx struct {
	txn  *memdb.Txn
	rev  int64     // the revision this command writes at
	time time.Time // the proposer's clock
}

// Apply executes one command at the next revision: the store's own write
// path when nothing replicates it.
func (s *Store) Apply(cmd *storev1.Command) (*Result, error) {
	return s.ApplyAt(s.Revision()+1, cmd)
}

// ApplyAt executes one command in one transaction, everything or nothing,
// at revision index: the Raft log index of the entry carrying it, so that
// every replica gives every change the same revision. Revisions are
// sparse (not every index changes the store). A command whose request id
// was already applied changes nothing and reports that revision.
func (s *Store) ApplyAt(index int64, cmd *storev1.Command) (*Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	txn := s.db.Load().Txn(true)
	defer txn.Abort()
	txn.TrackChanges()
	current, err := revisionTxn(txn)
	if err != nil {
		return nil, err
	}
	if index <= current {
		return nil, fmt.Errorf("store: command at revision %d, but the store is at %d", index, current)
	}
	if id := cmd.GetRequestId(); id != "" {
		if prev, err := txn.First(tableRequests, indexID, id); err == nil && prev != nil {
			return s.duplicateTxn(txn, cmd, prev.(*storev1.AppliedRequest).GetRevision())
		}
	}
	ctx := &applyCtx{txn: txn, rev: index, time: cmd.GetTime().AsTime()}
	var res *Result
	switch op := cmd.GetOp().(type) {
	case *storev1.Command_CreateService:
		res, err = s.createServiceTxn(ctx, op.CreateService)
	case *storev1.Command_UpdateService:
		res, err = s.updateServiceTxn(ctx, op.UpdateService)
	case *storev1.Command_DeleteService:
		res, err = s.deleteServiceTxn(ctx, op.DeleteService)
	case *storev1.Command_CreateInstance:
		res, err = s.createInstanceTxn(ctx, op.CreateInstance)
	case *storev1.Command_UpdateInstance:
		res, err = s.updateInstanceTxn(ctx, op.UpdateInstance)
	case *storev1.Command_DeleteInstance:
		res, err = s.deleteInstanceTxn(ctx, op.DeleteInstance)
	case *storev1.Command_ReplaceEndpoints:
		res, err = s.replaceEndpointsTxn(ctx, op.ReplaceEndpoints)
	case *storev1.Command_ExpireInstances:
		res, err = s.expireInstancesTxn(ctx, op.ExpireInstances)
	case *storev1.Command_SetNode:
		res, err = s.setNodeTxn(ctx, op.SetNode)
	default:
		err = fmt.Errorf("store: unknown command %T", op)
	}
	if err != nil {
		return nil, err
	}
	changes := txn.Changes()
	if len(changes) == 0 {
		res.Revision = current
		return res, nil
	}
	if id := cmd.GetRequestId(); id != "" {
		if err := rememberRequestTxn(txn, id, ctx.rev, cmd.GetTime()); err != nil {
			return nil, err
		}
	}
	if err := txn.Insert(tableIndex, &indexEntry{Key: revisionKey, Value: ctx.rev}); err != nil {
		return nil, err
	}
	txn.Commit()
	res.Revision = ctx.rev
	if len(s.hooks) > 0 {
		events := eventsOf(ctx.rev, changes)
		for _, h := range s.hooks {
			h(events)
		}
	}
	close(s.applied)
	s.applied = make(chan struct{})
	return res, nil
}

func revisionTxn(txn *memdb.Txn) (int64, error) {
	obj, err := txn.First(tableIndex, indexID, revisionKey)
	if err != nil || obj == nil {
		return 0, err
	}
	return obj.(*indexEntry).Value, nil
}

// Revision is the current store revision.
func (s *Store) Revision() int64 {
	rev, _ := revisionTxn(s.db.Load().Txn(false))
	return rev
}

// WaitRevision waits until the store has reached revision rev (a follower
// catching up with a client's last write) or ctx ends.
func (s *Store) WaitRevision(ctx context.Context, rev int64) error {
	for {
		s.mu.Lock()
		ch := s.applied
		s.mu.Unlock()
		if s.Revision() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Service returns one service and the revision it was read at.
func (s *Store) Service(namespace, name string) (*svcregv1.Service, int64, error) {
	txn := s.db.Load().Txn(false)
	svc, err := serviceTxn(txn, namespace, name)
	if err != nil {
		return nil, 0, err
	}
	rev, _ := revisionTxn(txn)
	return svc, rev, nil
}

func serviceTxn(txn *memdb.Txn, namespace, name string) (*svcregv1.Service, error) {
	obj, err := txn.First(tableServices, indexID, objectKey(namespace, name))
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, notFound("services", namespace, name)
	}
	return obj.(*svcregv1.Service), nil
}

// Instance returns one instance and the revision it was read at.
func (s *Store) Instance(namespace, name string) (*svcregv1.Instance, int64, error) {
	txn := s.db.Load().Txn(false)
	inst, err := instanceTxn(txn, namespace, name)
	if err != nil {
		return nil, 0, err
	}
	rev, _ := revisionTxn(txn)
	return inst, rev, nil
}

func instanceTxn(txn *memdb.Txn, namespace, name string) (*svcregv1.Instance, error) {
	obj, err := txn.First(tableInstances, indexID, objectKey(namespace, name))
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, notFound("instances", namespace, name)
	}
	return obj.(*svcregv1.Instance), nil
}

// Endpoints returns the endpoints of a service in instance order; NOT_FOUND
// when the service does not exist.
func (s *Store) Endpoints(namespace, service string) ([]*svcregv1.Endpoint, int64, error) {
	txn := s.db.Load().Txn(false)
	if _, err := serviceTxn(txn, namespace, service); err != nil {
		return nil, 0, err
	}
	eps, err := endpointsTxn(txn, namespace, service)
	if err != nil {
		return nil, 0, err
	}
	rev, _ := revisionTxn(txn)
	return eps, rev, nil
}

// ListQuery selects a page of a list.
type ListQuery struct {
	Namespace string          // AllNamespaces for every namespace
	After     string          // resume after this key (from a previous page)
	Limit     int             // at most this many objects (> 0)
	Selector  labels.Selector // on the objects' labels
}

// Page is one page of a list.
type Page[T any] struct {
	Items    []T
	Next     string // the key to resume after; empty on the last page
	Revision int64
}

// ListServices returns one page of services in (namespace, name) order.
func (s *Store) ListServices(q ListQuery) (Page[*svcregv1.Service], error) {
	return list(s.db.Load().Txn(false), tableServices, q, func(s *svcregv1.Service) (string, map[string]string) {
		return objectKey(s.GetNamespace(), s.GetName()), s.GetLabels()
	})
}

// ListInstances returns one page of instances in (namespace, name) order.
func (s *Store) ListInstances(q ListQuery) (Page[*svcregv1.Instance], error) {
	return list(s.db.Load().Txn(false), tableInstances, q, func(i *svcregv1.Instance) (string, map[string]string) {
		return objectKey(i.GetNamespace(), i.GetName()), i.GetLabels()
	})
}

func list[T any](txn *memdb.Txn, table string, q ListQuery, keyOf func(T) (string, map[string]string)) (Page[T], error) {
	prefix := ""
	if q.Namespace != AllNamespaces {
		prefix = q.Namespace + "/"
	}
	start := prefix
	if q.After > start {
		start = q.After
	}
	it, err := txn.LowerBound(table, indexID, start)
	if err != nil {
		return Page[T]{}, err
	}
	var page Page[T]
	page.Revision, _ = revisionTxn(txn)
	for obj := it.Next(); obj != nil; obj = it.Next() {
		o := obj.(T)
		key, lbls := keyOf(o)
		if !strings.HasPrefix(key, prefix) {
			break
		}
		if key <= q.After || !q.Selector.Matches(lbls) {
			continue
		}
		if len(page.Items) == q.Limit {
			page.Next = objectKeyOfLast(page.Items, keyOf)
			break
		}
		page.Items = append(page.Items, o)
	}
	return page, nil
}

func objectKeyOfLast[T any](items []T, keyOf func(T) (string, map[string]string)) string {
	k, _ := keyOf(items[len(items)-1])
	return k
}

// ServiceView is a consistent read of one service and its endpoints.
type ServiceView struct {
	Service   *svcregv1.Service // nil when the service does not exist
	Endpoints []*svcregv1.Endpoint
	Revision  int64
}

// ServiceView reads a service (which may not exist) and its endpoints from
// one snapshot: what a watch sends before its SYNCED marker.
func (s *Store) ServiceView(namespace, service string) (ServiceView, error) {
	txn := s.db.Load().Txn(false)
	var v ServiceView
	svc, err := serviceTxn(txn, namespace, service)
	switch {
	case err == nil:
		v.Service = svc
	case !errors.Is(err, ErrNotFound):
		return v, err
	}
	if v.Endpoints, err = endpointsTxn(txn, namespace, service); err != nil {
		return v, err
	}
	v.Revision, err = revisionTxn(txn)
	return v, err
}

// Objects is a consistent read of the services and instances of a
// namespace (AllNamespaces for all) that match a selector.
type Objects struct {
	Services  []*svcregv1.Service
	Instances []*svcregv1.Instance
	Revision  int64
}

// Objects reads every matching service and instance from one snapshot.
func (s *Store) Objects(namespace string, sel labels.Selector, services, instances bool) (Objects, error) {
	txn := s.db.Load().Txn(false)
	q := ListQuery{Namespace: namespace, Selector: sel, Limit: math.MaxInt}
	var out Objects
	if services {
		page, err := list(txn, tableServices, q, func(s *svcregv1.Service) (string, map[string]string) {
			return objectKey(s.GetNamespace(), s.GetName()), s.GetLabels()
		})
		if err != nil {
			return out, err
		}
		out.Services = page.Items
	}
	if instances {
		page, err := list(txn, tableInstances, q, func(i *svcregv1.Instance) (string, map[string]string) {
			return objectKey(i.GetNamespace(), i.GetName()), i.GetLabels()
		})
		if err != nil {
			return out, err
		}
		out.Instances = page.Items
	}
	var err error
	out.Revision, err = revisionTxn(txn)
	return out, err
}
