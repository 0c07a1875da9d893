// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"net/netip"
	"strings"

	"github.com/hashicorp/go-memdb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/labels"
	"github.com/svcreg/svcreg/internal/meta"
)

// ReadTxn is a consistent, lock-free read of the store at one revision: a
// memdb snapshot that writers never block. Every read of the registry goes
// through one; a request that asks several questions (a DNS query, a watch
// snapshot) asks them all of the same ReadTxn.
type ReadTxn struct {
	txn *memdb.Txn
	cfg Config
}

// Read opens a read transaction at the current revision.
func (s *Store) Read() *ReadTxn { return &ReadTxn{txn: s.db.Load().Txn(false), cfg: s.cfg} }

// Revision is the revision the transaction reads at.
func (r *ReadTxn) Revision() int64 {
	rev, _ := revisionTxn(r.txn)
	return rev
}

// Service returns one service; ErrNotFound when it does not exist.
func (r *ReadTxn) Service(namespace, name string) (*svcregv1.Service, error) {
	return serviceTxn(r.txn, namespace, name)
}

// Instance returns one instance; ErrNotFound when it does not exist.
func (r *ReadTxn) Instance(namespace, name string) (*svcregv1.Instance, error) {
	return instanceTxn(r.txn, namespace, name)
}

// Endpoints returns a service's endpoints in instance order (none when the
// service does not exist: ask Service to tell).
func (r *ReadTxn) Endpoints(namespace, service string) ([]*svcregv1.Endpoint, error) {
	return endpointsTxn(r.txn, namespace, service)
}

// EachEndpoint calls f with a service's endpoints in instance order until
// f returns false, without collecting them.
func (r *ReadTxn) EachEndpoint(namespace, service string, f func(*svcregv1.Endpoint) bool) error {
	it, err := r.txn.Get(tableEndpoints, indexID+"_prefix", meta.EndpointKey(namespace, service, ""))
	if err != nil {
		return err
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if !f(obj.(*svcregv1.Endpoint)) {
			return nil
		}
	}
	return nil
}

// EachEndpointIn calls f with every endpoint of a namespace
// (meta.AllNamespaces: of every namespace visible allows), in key order,
// until f returns false.
func (r *ReadTxn) EachEndpointIn(namespace string, visible func(string) bool, f func(*svcregv1.Endpoint) bool) error {
	prefix := namespace + "/"
	if namespace == meta.AllNamespaces {
		prefix = ""
	}
	it, err := r.txn.Get(tableEndpoints, indexID+"_prefix", prefix)
	if err != nil {
		return err
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		ep := obj.(*svcregv1.Endpoint)
		if visible != nil && !visible(ep.GetNamespace()) {
			continue
		}
		if !f(ep) {
			return nil
		}
	}
	return nil
}

// ListQuery selects a page of a list.
type ListQuery struct {
	Namespace string          // meta.AllNamespaces for every namespace
	After     string          // resume after this key (from a previous page)
	Limit     int             // at most this many objects; 0: no limit
	Selector  labels.Selector // on the objects' labels
	// Visible, when set, limits a list across namespaces to those the
	// caller may read (the others are skipped, as if empty).
	Visible func(namespace string) bool
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T
	Next  string // the key to resume after; empty on the last page
}

// ListServices returns one page of services in (namespace, name) order.
func (r *ReadTxn) ListServices(q ListQuery) (Page[*svcregv1.Service], error) {
	return list(r.txn, tableServices, q, func(s *svcregv1.Service) (string, map[string]string) {
		return meta.Key(s.GetNamespace(), s.GetName()), s.GetLabels()
	})
}

// ListInstances returns one page of instances in (namespace, name) order.
func (r *ReadTxn) ListInstances(q ListQuery) (Page[*svcregv1.Instance], error) {
	return list(r.txn, tableInstances, q, func(i *svcregv1.Instance) (string, map[string]string) {
		return meta.Key(i.GetNamespace(), i.GetName()), i.GetLabels()
	})
}

func list[T any](txn *memdb.Txn, table string, q ListQuery, keyOf func(T) (string, map[string]string)) (Page[T], error) {
	prefix := ""
	if q.Namespace != meta.AllNamespaces {
		prefix = q.Namespace + "/"
	}
	start := max(prefix, q.After)
	it, err := txn.LowerBound(table, indexID, start)
	if err != nil {
		return Page[T]{}, err
	}
	var page Page[T]
	last := ""
	for obj := it.Next(); obj != nil; obj = it.Next() {
		o := obj.(T)
		key, lbls := keyOf(o)
		if !strings.HasPrefix(key, prefix) {
			break
		}
		if key <= q.After || !q.Selector.Matches(lbls) {
			continue
		}
		if q.Visible != nil {
			if ns, _, _ := strings.Cut(key, "/"); !q.Visible(ns) {
				continue
			}
		}
		if q.Limit > 0 && len(page.Items) == q.Limit {
			page.Next = last
			break
		}
		page.Items, last = append(page.Items, o), key
	}
	return page, nil
}

// NamespaceHasServices reports whether a namespace holds any service.
func (r *ReadTxn) NamespaceHasServices(namespace string) (bool, error) {
	obj, err := r.txn.First(tableServices, indexID+"_prefix", namespace+"/")
	return obj != nil, err
}

// ServiceByClusterIP returns the service holding a cluster IP, or nil.
func (r *ReadTxn) ServiceByClusterIP(ip netip.Addr) (*svcregv1.Service, error) {
	obj, err := r.txn.First(tableAllocations, indexID, ipAllocationKey(ip))
	if err != nil || obj == nil {
		return nil, err
	}
	ns, name, _ := strings.Cut(obj.(*allocation).Owner, "/")
	return serviceTxn(r.txn, ns, name)
}

// EndpointsByIP returns the endpoints with an IP, in every service.
func (r *ReadTxn) EndpointsByIP(ip string) ([]*svcregv1.Endpoint, error) {
	it, err := r.txn.Get(tableEndpoints, indexIP, ip)
	if err != nil {
		return nil, err
	}
	var out []*svcregv1.Endpoint
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*svcregv1.Endpoint))
	}
	return out, nil
}

// InServiceRange reports whether ip is in the cluster IP range.
func (r *ReadTxn) InServiceRange(ip netip.Addr) bool { return r.cfg.ServiceIPs.prefix.Contains(ip) }

// Nodes are the servers' address records, by ID.
func (r *ReadTxn) Nodes() ([]*storev1.SetNode, error) {
	it, err := r.txn.Get(tableNodes, indexID)
	if err != nil {
		return nil, err
	}
	var out []*storev1.SetNode
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*storev1.SetNode))
	}
	return out, nil
}

// Node returns the addresses a server recorded; ErrNotFound when none.
func (r *ReadTxn) Node(id string) (*storev1.SetNode, error) {
	obj, err := r.txn.First(tableNodes, indexID, id)
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, &Error{ErrNotFound, "no address record for server " + id}
	}
	return obj.(*storev1.SetNode), nil
}

func serviceTxn(txn *memdb.Txn, namespace, name string) (*svcregv1.Service, error) {
	obj, err := txn.First(tableServices, indexID, meta.Key(namespace, name))
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, notFound("services", namespace, name)
	}
	return obj.(*svcregv1.Service), nil
}

func instanceTxn(txn *memdb.Txn, namespace, name string) (*svcregv1.Instance, error) {
	obj, err := txn.First(tableInstances, indexID, meta.Key(namespace, name))
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, notFound("instances", namespace, name)
	}
	return obj.(*svcregv1.Instance), nil
}
