// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

// requestRetention is how long applied request ids are remembered, by the
// commands' own clock (so every replica forgets the same ones). A retry
// after an unknown outcome comes within the proposer's hold timeout (7 s);
// the margin covers clock skew between the servers that propose.
const requestRetention = time.Minute

// requestKey is a request id as 16 bytes: ids are 128 random bits in hex.
// Keys without pointers keep the log out of the garbage collector's
// marking, which matters at thousands of writes a second.
type requestKey [16]byte

func keyOfRequest(id string) requestKey {
	var k requestKey
	if len(id) == 2*len(k) {
		if _, err := hex.Decode(k[:], []byte(id)); err == nil {
			return k
		}
	}
	sum := sha256.Sum256([]byte(id)) // any other form: a 128-bit digest
	copy(k[:], sum[:])
	return k
}

type appliedRequest struct {
	key requestKey
	rev int64
	at  int64 // the command's time, Unix ns
}

// requestLog remembers the request ids applied within requestRetention
// (AIP-155 semantics for our own retries): a map for lookups and a queue
// in apply order for forgetting. It is part of the replicated state (and
// of snapshots) but lives outside memdb: it is written once per command
// and only ever read by the state machine.
type requestLog struct {
	byKey  map[requestKey]appliedRequest
	queue  []appliedRequest
	head   int   // queue[head:] is live
	newest int64 // the latest time remembered: the log's "now"
}

func newRequestLog() *requestLog { return &requestLog{byKey: map[requestKey]appliedRequest{}} }

// lookup returns the revision a request was applied at, if it was within
// the retention before the newest request remembered (pending: those the
// current batch applied and has not committed yet). The age is checked
// here, not left to add's forgetting, so that the answer is the same
// whether the commands before came one at a time or in one batch: every
// replica, whatever its batches, answers a retry alike.
func (l *requestLog) lookup(k requestKey, pending []appliedRequest) (int64, bool) {
	newest := l.newest
	for _, r := range pending {
		newest = max(newest, r.at)
	}
	cutoff := newest - int64(requestRetention)
	r, ok := l.byKey[k]
	for _, p := range pending {
		if p.key == k {
			r, ok = p, true
		}
	}
	if !ok || r.at < cutoff {
		return 0, false
	}
	return r.rev, true
}

// add remembers a request and forgets those older than the retention.
func (l *requestLog) add(r appliedRequest) {
	l.byKey[r.key] = r
	l.queue = append(l.queue, r)
	l.newest = max(l.newest, r.at)
	cutoff := l.newest - int64(requestRetention)
	for l.head < len(l.queue) && l.queue[l.head].at < cutoff {
		if old := l.queue[l.head]; l.byKey[old.key] == old {
			delete(l.byKey, old.key)
		}
		l.head++
	}
	if l.head > 1024 && l.head > len(l.queue)/2 {
		l.queue = append(l.queue[:0:0], l.queue[l.head:]...)
		l.head = 0
	}
}

// live returns a copy of the remembered requests in apply order.
func (l *requestLog) live() []appliedRequest { return slices.Clone(l.queue[l.head:]) }

// duplicateTxn answers a command whose request id was applied before: no
// change, the original revision, and the object as it is now.
func (s *Store) duplicateTxn(txn *memdb.Txn, cmd *storev1.Command, rev int64) (*Result, error) {
	res := &Result{Revision: rev}
	switch op := cmd.GetOp().(type) {
	case *storev1.Command_CreateService:
		res.Service, _ = serviceTxn(txn, meta.Namespace(op.CreateService.GetService().GetNamespace()), op.CreateService.GetService().GetName())
	case *storev1.Command_UpdateService:
		res.Service, _ = serviceTxn(txn, meta.Namespace(op.UpdateService.GetService().GetNamespace()), op.UpdateService.GetService().GetName())
	case *storev1.Command_CreateInstance:
		res.Instance, _ = instanceTxn(txn, meta.Namespace(op.CreateInstance.GetInstance().GetNamespace()), op.CreateInstance.GetInstance().GetName())
	case *storev1.Command_UpdateInstance:
		res.Instance, _ = instanceTxn(txn, meta.Namespace(op.UpdateInstance.GetInstance().GetNamespace()), op.UpdateInstance.GetInstance().GetName())
	case *storev1.Command_ReportProbe:
		res.Instance, _ = instanceTxn(txn, meta.Namespace(op.ReportProbe.GetNamespace()), op.ReportProbe.GetName())
	case *storev1.Command_ReplaceEndpoints:
		res.Endpoints, _ = endpointsTxn(txn, meta.Namespace(op.ReplaceEndpoints.GetNamespace()), op.ReplaceEndpoints.GetService())
	}
	return res, nil
}

// setNodeTxn records a server's addresses.
func (s *Store) setNodeTxn(ctx *applyCtx, node *storev1.SetNode) (*Result, error) {
	if existing, err := ctx.txn.First(tableNodes, indexID, node.GetId()); err == nil && existing != nil && proto.Equal(existing.(proto.Message), node) {
		return &Result{}, nil
	}
	return &Result{}, ctx.txn.Insert(tableNodes, proto.Clone(node))
}
