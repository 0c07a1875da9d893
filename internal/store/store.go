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
	mu sync.Mutex
	// requests is the replicated request-id log (guarded by mu).
	requests     *requestLog
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
	s := &Store{cfg: cfg, applied: make(chan struct{}), requests: newRequestLog()}
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
	txn  *writeTxn
	rev  int64     // the revision this command writes at
	time time.Time // the proposer's clock
}

// writeTxn is a memdb write transaction that records each change itself:
// a batch runs several commands in one transaction, each at its own
// revision with its own events, where memdb's change tracking would merge
// them all.
type writeTxn struct {
	*memdb.Txn
	changes []memdb.Change
}

// Insert inserts or replaces obj, recording the change.
func (w *writeTxn) Insert(table string, obj any) error {
	var before any
	if key, ok := eventKey(table, obj); ok {
		var err error
		if before, err = w.First(table, indexID, key); err != nil {
			return err
		}
	}
	return w.Replace(table, before, obj)
}

// Replace inserts obj in place of before, the stored object with its id
// (nil: none), which the caller has already looked up.
func (w *writeTxn) Replace(table string, before, obj any) error {
	if err := w.Txn.Insert(table, obj); err != nil {
		return err
	}
	w.changes = append(w.changes, memdb.Change{Table: table, Before: before, After: obj})
	return nil
}

// Delete deletes obj (the stored object), recording the change.
func (w *writeTxn) Delete(table string, obj any) error {
	if err := w.Txn.Delete(table, obj); err != nil {
		return err
	}
	w.changes = append(w.changes, memdb.Change{Table: table, Before: obj})
	return nil
}

// DeletePrefix deletes the objects an index prefix matches, recording
// each (memdb's own would not).
func (w *writeTxn) DeletePrefix(table, prefixIndex, prefix string) (bool, error) {
	it, err := w.Get(table, prefixIndex, prefix)
	if err != nil {
		return false, err
	}
	var objs []any
	for obj := it.Next(); obj != nil; obj = it.Next() {
		objs = append(objs, obj)
	}
	for _, obj := range objs {
		if err := w.Delete(table, obj); err != nil {
			return false, err
		}
	}
	return len(objs) > 0, nil
}

// eventKey is the id of an object whose changes become events.
func eventKey(table string, obj any) (string, bool) {
	switch o := obj.(type) {
	case *svcregv1.Service:
		return objectKey(o.GetNamespace(), o.GetName()), true
	case *svcregv1.Instance:
		return objectKey(o.GetNamespace(), o.GetName()), true
	case *svcregv1.Endpoint:
		return endpointKey(o.GetNamespace(), o.GetService(), o.GetInstance()), true
	}
	return "", false
}

// commandChanges merges the changes one command made to each object, as
// memdb's Changes does: the first Before, the last After, in the order of
// the last writes; an object created and deleted again is no change.
func commandChanges(changes []memdb.Change) []memdb.Change {
	dup := false
	for i := 1; i < len(changes) && !dup; i++ {
		for j := range i {
			if sameObject(changes[i], changes[j]) {
				dup = true
				break
			}
		}
		if i > 16 && !dup {
			break // a wide command (a service's endpoints): check with keys
		}
	}
	type objectID struct{ table, key string }
	if !dup && len(changes) <= 17 {
		return changes
	}
	// (Changes to tables that make no events are left out here.)
	last := make(map[objectID]int, len(changes))
	first := make(map[objectID]any, len(changes))
	for i, c := range changes {
		k, ok := eventKey(c.Table, changed(c))
		if !ok {
			continue
		}
		id := objectID{c.Table, k}
		if _, seen := last[id]; !seen {
			first[id] = c.Before
		}
		last[id] = i
	}
	out := make([]memdb.Change, 0, len(last))
	for i, c := range changes {
		k, ok := eventKey(c.Table, changed(c))
		id := objectID{c.Table, k}
		if !ok || last[id] != i {
			continue
		}
		c.Before = first[id]
		if c.Before != nil || c.After != nil {
			out = append(out, c)
		}
	}
	return out
}

// sameObject reports whether two changes are to the same service,
// instance or endpoint (other tables make no events: never the same).
func sameObject(a, b memdb.Change) bool {
	if a.Table != b.Table {
		return false
	}
	switch x := changed(a).(type) {
	case *svcregv1.Service:
		y := changed(b).(*svcregv1.Service)
		return x.GetName() == y.GetName() && x.GetNamespace() == y.GetNamespace()
	case *svcregv1.Instance:
		y := changed(b).(*svcregv1.Instance)
		return x.GetName() == y.GetName() && x.GetNamespace() == y.GetNamespace()
	case *svcregv1.Endpoint:
		y := changed(b).(*svcregv1.Endpoint)
		return x.GetInstance() == y.GetInstance() && x.GetService() == y.GetService() && x.GetNamespace() == y.GetNamespace()
	}
	return false
}

// changed is the object a change is about.
func changed(c memdb.Change) any {
	if c.After != nil {
		return c.After
	}
	return c.Before
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
	out := s.ApplyBatch([]Entry{{Index: index, Command: cmd}})
	return out[0].Result, out[0].Err
}

// Entry is a command at its log index.
type Entry struct {
	Index   int64
	Command *storev1.Command
}

// Outcome is what applying an Entry gave.
type Outcome struct {
	Result *Result
	Err    error
}

// ApplyBatch applies entries in order, each as ApplyAt would, sharing
// memdb transactions between them: one commit (and one copy of the paths
// the commands touch) per run of successful commands rather than per
// command. A command that fails leaves no trace: the run before it is
// applied again without it (deterministically the same), then it alone.
func (s *Store) ApplyBatch(entries []Entry) []Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Outcome, len(entries))
	for i := 0; i < len(entries); {
		i += s.applyRunLocked(entries[i:], out[i:])
	}
	return out
}

// applyRunLocked applies entries in one transaction up to the first that
// fails, and returns how many it consumed: all of them, the ones before a
// failure (committed), or the failing first one (not).
func (s *Store) applyRunLocked(entries []Entry, out []Outcome) int {
	txn := s.db.Load().Txn(true)
	defer txn.Abort()
	w := &writeTxn{Txn: txn}
	current, err := revisionTxn(txn)
	if err != nil {
		out[0] = Outcome{Err: err}
		return 1
	}
	type committed struct {
		rev    int64
		events []Event
	}
	var done []committed
	var remembered []appliedRequest // joins the request log on commit
	for k, e := range entries {
		mark := len(w.changes)
		res, err := s.applyOneTxn(w, current, e.Index, e.Command, &remembered)
		if err != nil {
			if k == 0 {
				out[0] = Outcome{Err: err}
				return 1
			}
			// Undo: the transaction is abandoned and the successful run
			// before this command applied again, alone.
			txn.Abort()
			return s.applyRunLocked(entries[:k], out[:k])
		}
		out[k] = Outcome{Result: res}
		if len(w.changes) > mark {
			current = e.Index
			if len(s.hooks) > 0 {
				done = append(done, committed{e.Index, eventsOf(e.Index, commandChanges(w.changes[mark:]))})
			}
		}
	}
	if len(w.changes) == 0 {
		return len(entries)
	}
	if err := txn.Insert(tableIndex, &indexEntry{Key: revisionKey, Value: current}); err != nil {
		panic(fmt.Sprintf("store: recording revision %d: %v", current, err)) // schema bug
	}
	txn.Commit()
	for _, r := range remembered {
		s.requests.add(r)
	}
	for _, c := range done {
		for _, h := range s.hooks {
			h(c.events)
		}
	}
	close(s.applied)
	s.applied = make(chan struct{})
	return len(entries)
}

// applyOneTxn runs one command in w at index, after the store's revision
// current.
func (s *Store) applyOneTxn(w *writeTxn, current, index int64, cmd *storev1.Command, remembered *[]appliedRequest) (*Result, error) {
	if index <= current {
		return nil, fmt.Errorf("store: command at revision %d, but the store is at %d", index, current)
	}
	var key requestKey
	if id := cmd.GetRequestId(); id != "" {
		key = keyOfRequest(id)
		rev, dup := s.requests.lookup(key)
		for _, r := range *remembered {
			if r.key == key {
				rev, dup = r.rev, true
			}
		}
		if dup {
			return s.duplicateTxn(w.Txn, cmd, rev)
		}
	}
	ctx := &applyCtx{txn: w, rev: index, time: cmd.GetTime().AsTime()}
	mark := len(w.changes)
	var res *Result
	var err error
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
	if len(w.changes) == mark {
		res.Revision = current
		return res, nil
	}
	if cmd.GetRequestId() != "" {
		*remembered = append(*remembered, appliedRequest{key: key, rev: index, at: cmd.GetTime().AsTime().UnixNano()})
	}
	res.Revision = index
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
