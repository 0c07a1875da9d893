package store

import (
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
)

// requestRetention is how long applied request ids are remembered, by the
// commands' own clock (so every replica forgets the same ones).
const requestRetention = 10 * time.Minute

// rememberRequestTxn records an applied request id, and forgets the ones
// older than requestRetention.
func rememberRequestTxn(txn *memdb.Txn, id string, rev int64, at *timestamppb.Timestamp) error {
	if err := txn.Insert(tableRequests, &storev1.AppliedRequest{Id: id, Revision: rev, Time: at}); err != nil {
		return err
	}
	cutoff := at.AsTime().Add(-requestRetention).UnixNano()
	it, err := txn.Get(tableRequests, indexTime+"_prefix", "")
	if err != nil {
		return err
	}
	var old []any
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if obj.(*storev1.AppliedRequest).GetTime().AsTime().UnixNano() >= cutoff {
			break
		}
		old = append(old, obj)
	}
	for _, obj := range old {
		if err := txn.Delete(tableRequests, obj); err != nil {
			return err
		}
	}
	return nil
}

// duplicateTxn answers a command whose request id was applied before: no
// change, the original revision, and the object as it is now.
func (s *Store) duplicateTxn(txn *memdb.Txn, cmd *storev1.Command, rev int64) (*Result, error) {
	res := &Result{Revision: rev}
	switch op := cmd.GetOp().(type) {
	case *storev1.Command_CreateService:
		res.Service, _ = serviceTxn(txn, namespaceOrDefault(op.CreateService.GetService().GetNamespace()), op.CreateService.GetService().GetName())
	case *storev1.Command_UpdateService:
		res.Service, _ = serviceTxn(txn, namespaceOrDefault(op.UpdateService.GetService().GetNamespace()), op.UpdateService.GetService().GetName())
	case *storev1.Command_CreateInstance:
		res.Instance, _ = instanceTxn(txn, namespaceOrDefault(op.CreateInstance.GetInstance().GetNamespace()), op.CreateInstance.GetInstance().GetName())
	case *storev1.Command_UpdateInstance:
		res.Instance, _ = instanceTxn(txn, namespaceOrDefault(op.UpdateInstance.GetInstance().GetNamespace()), op.UpdateInstance.GetInstance().GetName())
	case *storev1.Command_ReplaceEndpoints:
		res.Endpoints, _ = endpointsTxn(txn, namespaceOrDefault(op.ReplaceEndpoints.GetNamespace()), op.ReplaceEndpoints.GetService())
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

// Node returns the addresses a server recorded, or nil.
func (s *Store) Node(id string) *storev1.SetNode {
	obj, err := s.db.Load().Txn(false).First(tableNodes, indexID, id)
	if err != nil || obj == nil {
		return nil
	}
	return obj.(*storev1.SetNode)
}
