// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"github.com/hashicorp/go-memdb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

// writeTxn is a memdb write transaction that records each change itself:
// a batch runs several commands in one transaction, each at its own
// revision with its own events, where memdb's change tracking would merge
// them all.
type writeTxn struct {
	*memdb.Txn
	changes []memdb.Change
	// tokens: a token was created or deleted (the servers re-check the
	// credentials of open streams).
	tokens bool
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
		return meta.Key(o.GetNamespace(), o.GetName()), true
	case *svcregv1.Instance:
		return meta.Key(o.GetNamespace(), o.GetName()), true
	case *svcregv1.Endpoint:
		return meta.EndpointKey(o.GetNamespace(), o.GetService(), o.GetInstance()), true
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
