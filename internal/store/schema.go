// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/hashicorp/go-memdb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

// Table and index names.
const (
	tableServices    = "services"
	tableInstances   = "instances"
	tableEndpoints   = "endpoints"
	tableAllocations = "allocations"
	tableIndex       = "index"
	tableNodes       = "nodes"
	tableTokens      = "tokens"

	indexID       = "id"
	indexSelector = "selector" // services: namespace/first selector pair
	indexLabel    = "label"    // instances: namespace/key=value, one per label
	indexOwner    = "owner"    // allocations: namespace/service
	indexIP       = "ip"       // endpoints: IP address (reverse DNS)
	indexHash     = "hash"     // tokens: the hex SHA-256 of the secret
	indexIdentity = "identity" // tokens: a bound client certificate identity
)

// schema is the registry's memdb schema: one function per table.
func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableServices:    servicesTable(),
		tableInstances:   instancesTable(),
		tableEndpoints:   endpointsTable(),
		tableAllocations: allocationsTable(),
		tableIndex:       indexTable(),
		tableNodes:       nodesTable(),
		tableTokens:      tokensTable(),
	}}
}

// servicesTable keys services by namespace/name. The selector index holds
// each service under its smallest selector pair only: an instance finds the
// services that may select it with one lookup per label, so an instance
// write costs O(its labels + candidate services), whatever the number of
// services in the namespace.
func servicesTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableServices,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndexer[*svcregv1.Service](func(s *svcregv1.Service) (string, bool) {
				return meta.Key(s.GetNamespace(), s.GetName()), true
			})},
			indexSelector: {Name: indexSelector, AllowMissing: true, Indexer: keyIndexer[*svcregv1.Service](func(s *svcregv1.Service) (string, bool) {
				k, v, ok := smallestPair(s.GetSelector())
				if !ok || s.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME {
					return "", false
				}
				return labelKey(s.GetNamespace(), k, v), true
			})},
		},
	}
}

// instancesTable keys instances by namespace/name and indexes every label
// pair, so a service finds the instances it selects without a scan.
func instancesTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableInstances,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndexer[*svcregv1.Instance](func(i *svcregv1.Instance) (string, bool) {
				return meta.Key(i.GetNamespace(), i.GetName()), true
			})},
			indexLabel: {Name: indexLabel, AllowMissing: true, Indexer: multiKeyIndexer[*svcregv1.Instance](func(i *svcregv1.Instance) []string {
				keys := make([]string, 0, len(i.GetLabels()))
				for k, v := range i.GetLabels() {
					keys = append(keys, labelKey(i.GetNamespace(), k, v))
				}
				return keys
			})},
		},
	}
}

// endpointsTable holds one row per (service, instance), keyed
// namespace/service/instance so that a service's endpoints are one prefix
// scan, and indexed by IP for reverse DNS. An instance's endpoints are
// found through the services that select it (syncInstanceEndpointsTxn):
// an index by instance would cost a radix entry per endpoint.
func endpointsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableEndpoints,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndexer[*svcregv1.Endpoint](func(e *svcregv1.Endpoint) (string, bool) {
				return meta.EndpointKey(e.GetNamespace(), e.GetService(), e.GetInstance()), true
			})},
			indexIP: {Name: indexIP, Indexer: keyIndexer[*svcregv1.Endpoint](func(e *svcregv1.Endpoint) (string, bool) {
				return e.GetIp(), true
			})},
		},
	}
}

// allocation records a cluster IP or node port taken by a service.
type allocation struct {
	Key   string // "ip/10.96.0.10" or "port/30080"
	Owner string // namespace/service
}

// allocationsTable keys allocations by resource and indexes them by owner,
// so a deleted service releases everything it holds.
func allocationsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableAllocations,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndexer[*allocation](func(a *allocation) (string, bool) {
				return a.Key, true
			})},
			indexOwner: {Name: indexOwner, Indexer: keyIndexer[*allocation](func(a *allocation) (string, bool) {
				return a.Owner, true
			})},
		},
	}
}

// indexEntry is a named counter; "revision" is the registry revision.
type indexEntry struct {
	Key   string
	Value int64
}

// The named counters.
const (
	revisionKey = "revision"
	// tokensKey is 1 once any token was created (docs/security.md,
	// "Bootstrap").
	tokensKey = "tokens_bootstrapped"
)

func indexTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableIndex,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndexer[*indexEntry](func(e *indexEntry) (string, bool) {
				return e.Key, true
			})},
		},
	}
}

// labelKey indexes a label pair in a namespace. Label keys may contain '/',
// but a pair is always last in the key (object keys are meta.Key).
func labelKey(namespace, key, value string) string { return namespace + "/" + key + "=" + value }

func smallestPair(m map[string]string) (k, v string, ok bool) {
	for key, value := range m {
		if !ok || key < k {
			k, v, ok = key, value, true
		}
	}
	return k, v, ok
}

// keyIndexer is a typed memdb indexer over one string key per object.
// Exact keys end in a NUL so that "a/b" does not match "a/bc"; prefix
// lookups ("id_prefix") leave it off.
type keyIndexer[T any] func(T) (string, bool)

func (f keyIndexer[T]) FromObject(obj any) (bool, []byte, error) {
	o, ok := obj.(T)
	if !ok {
		return false, nil, fmt.Errorf("indexer: unexpected object %T", obj)
	}
	k, ok := f(o)
	if !ok {
		return false, nil, nil
	}
	return true, append([]byte(k), 0), nil
}

func (f keyIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	if err != nil {
		return nil, err
	}
	return append([]byte(k), 0), nil
}

func (f keyIndexer[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	return []byte(k), err
}

// multiKeyIndexer is a typed memdb indexer over several keys per object.
type multiKeyIndexer[T any] func(T) []string

func (f multiKeyIndexer[T]) FromObject(obj any) (bool, [][]byte, error) {
	o, ok := obj.(T)
	if !ok {
		return false, nil, fmt.Errorf("indexer: unexpected object %T", obj)
	}
	keys := f(o)
	if len(keys) == 0 {
		return false, nil, nil
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = append([]byte(k), 0)
	}
	return true, out, nil
}

func (f multiKeyIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	if err != nil {
		return nil, err
	}
	return append([]byte(k), 0), nil
}

func stringArg(args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("indexer: want one argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("indexer: want a string argument, got %T", args[0])
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("indexer: key contains NUL")
	}
	return s, nil
}

// nodesTable holds the cluster's servers' addresses.
func nodesTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableNodes,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndexer[*storev1.SetNode](func(n *storev1.SetNode) (string, bool) {
				return n.GetId(), true
			})},
		},
	}
}

// tokensTable holds access tokens by accessor, found by their secret's
// hash (or their bound identity) when a request presents one.
func tokensTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableTokens,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndexer[*storev1.StoredToken](func(t *storev1.StoredToken) (string, bool) {
				return t.GetToken().GetAccessor(), true
			})},
			indexHash: {Name: indexHash, Unique: true, AllowMissing: true, Indexer: keyIndexer[*storev1.StoredToken](func(t *storev1.StoredToken) (string, bool) {
				return hex.EncodeToString(t.GetSecretSha256()), len(t.GetSecretSha256()) > 0
			})},
			indexIdentity: {Name: indexIdentity, Unique: true, AllowMissing: true, Indexer: keyIndexer[*storev1.StoredToken](func(t *storev1.StoredToken) (string, bool) {
				return t.GetToken().GetIdentity(), t.GetToken().GetIdentity() != ""
			})},
		},
	}
}
