// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/validation"
)

var instanceFieldsNotWritable = map[string]bool{
	"name": true, "namespace": true, "uid": true, "resource_version": true, "etag": true,
	"create_time": true, "lease_expire_time": true, "owner": true, "probe_status": true,
}

// prepareInstance is a create's stateless part, as prepareService.
func prepareInstance(in *svcregv1.Instance, lim Limits) (*svcregv1.Instance, validation.ErrorList) {
	if in == nil {
		return nil, validation.ErrorList{validation.Required("instance", "")}
	}
	inst := proto.Clone(in).(*svcregv1.Instance)
	inst.ResourceVersion, inst.Etag, inst.CreateTime, inst.LeaseExpireTime, inst.Owner, inst.ProbeStatus = 0, "", nil, nil, "", nil
	defaultInstance(inst)
	return inst, ValidateInstance(inst, "instance", lim)
}

// nameFreeTxn fails with ALREADY_EXISTS when the name is taken.
func nameFreeTxn(txn *memdb.Txn, table, namespace, name string) error {
	obj, err := txn.First(table, indexID, meta.Key(namespace, name))
	switch {
	case err != nil:
		return err
	case obj != nil:
		return alreadyExists(table, namespace, name)
	}
	return nil
}

func (s *Store) createInstanceTxn(ctx *applyCtx, req *svcregv1.CreateInstanceRequest) (*Result, error) {
	inst := proto.Clone(req.GetInstance()).(*svcregv1.Instance)
	if inst.GetUid() == "" || inst.GetName() == "" {
		return nil, fmt.Errorf("store: create of an unprepared instance: the proposer prepares it and sets its uid")
	}
	if err := nameFreeTxn(ctx.txn.Txn, tableInstances, inst.GetNamespace(), inst.GetName()); err != nil {
		return nil, err
	}
	inst.CreateTime = timestamppb.New(ctx.time)
	inst.ResourceVersion, inst.Etag, inst.Owner = ctx.rev, Etag(ctx.rev), ctx.owner
	carryProbeStatus(inst, nil, ctx.time)
	if err := ctx.txn.Replace(tableInstances, nil, inst); err != nil {
		return nil, err
	}
	if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, inst.GetNamespace(), inst.GetName(), nil, inst); err != nil {
		return nil, err
	}
	return &Result{Instance: inst}, nil
}

// OwnedBy fails unless inst is owner's, when required (the write may
// change only its own instances: a registrar's). Lease renewals, which
// are not commands, check with it too.
func OwnedBy(inst *svcregv1.Instance, owner string, required bool) error {
	if required && inst.GetOwner() != owner {
		return &Error{ErrNotOwner, fmt.Sprintf("instance %q in namespace %q was registered by another token: a registrar may change only its own instances", inst.GetName(), inst.GetNamespace())}
	}
	return nil
}

// mergeInstanceTxn is an update's check against the state, as
// mergeServiceTxn.
func (s *Store) mergeInstanceTxn(txn *memdb.Txn, req *svcregv1.UpdateInstanceRequest, owner string, requireOwner bool) (old, inst *svcregv1.Instance, err error) {
	patch := req.GetInstance()
	namespace := meta.Namespace(patch.GetNamespace())
	if old, err = instanceTxn(txn, namespace, patch.GetName()); err != nil {
		return nil, nil, err
	}
	if err := OwnedBy(old, owner, requireOwner); err != nil {
		return nil, nil, err
	}
	if !preconditionHolds(patch.GetEtag(), patch.GetResourceVersion(), old.GetEtag(), old.GetResourceVersion()) {
		return nil, nil, conflict("instances", namespace, patch.GetName())
	}
	inst = proto.Clone(old).(*svcregv1.Instance)
	if errs := mergeMask(inst, patch, req.GetUpdateMask().GetPaths(), instanceFieldsNotWritable, "update_mask"); len(errs) > 0 {
		return nil, nil, errs
	}
	defaultInstance(inst)
	if errs := ValidateInstance(inst, "instance", s.cfg.Limits); len(errs) > 0 {
		return nil, nil, errs
	}
	return old, inst, nil
}

func (s *Store) updateInstanceTxn(ctx *applyCtx, req *svcregv1.UpdateInstanceRequest) (*Result, error) {
	old, inst, err := s.mergeInstanceTxn(ctx.txn.Txn, req, ctx.owner, ctx.requireOwner)
	if err != nil {
		return nil, err
	}
	carryProbeStatus(inst, old, ctx.time)
	if proto.Equal(inst, old) {
		return &Result{Instance: old}, nil
	}
	inst.ResourceVersion, inst.Etag = ctx.rev, Etag(ctx.rev)
	if err := ctx.txn.Replace(tableInstances, old, inst); err != nil {
		return nil, err
	}
	if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, inst.GetNamespace(), inst.GetName(), old, inst); err != nil {
		return nil, err
	}
	return &Result{Instance: inst}, nil
}

// deletableInstanceTxn is a delete's check, as deletableServiceTxn.
func deletableInstanceTxn(txn *memdb.Txn, req *svcregv1.DeleteInstanceRequest, owner string, requireOwner bool) (*svcregv1.Instance, error) {
	namespace := meta.Namespace(req.GetNamespace())
	old, err := instanceTxn(txn, namespace, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := OwnedBy(old, owner, requireOwner); err != nil {
		return nil, err
	}
	if !preconditionHolds(req.GetEtag(), 0, old.GetEtag(), old.GetResourceVersion()) {
		return nil, conflict("instances", namespace, req.GetName())
	}
	return old, nil
}

func (s *Store) deleteInstanceTxn(ctx *applyCtx, req *svcregv1.DeleteInstanceRequest) (*Result, error) {
	old, err := deletableInstanceTxn(ctx.txn.Txn, req, ctx.owner, ctx.requireOwner)
	if err != nil {
		return nil, err
	}
	if err := ctx.txn.Delete(tableInstances, old); err != nil {
		return nil, err
	}
	if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, old.GetNamespace(), old.GetName(), old, nil); err != nil {
		return nil, err
	}
	return &Result{Instance: old}, nil
}

// expireInstancesTxn deletes the instances whose leases lapsed, each only
// if it is still at the revision its lease was armed at.
func (s *Store) expireInstancesTxn(ctx *applyCtx, req *storev1.ExpireInstances) (*Result, error) {
	for _, ref := range req.GetInstances() {
		inst, err := instanceTxn(ctx.txn.Txn, ref.GetNamespace(), ref.GetName())
		switch {
		case errors.Is(err, ErrNotFound):
			continue // gone since
		case err != nil:
			return nil, err
		case inst.GetResourceVersion() != ref.GetResourceVersion():
			continue // re-registered or updated since: the lease was re-armed
		}
		if err := ctx.txn.Delete(tableInstances, inst); err != nil {
			return nil, err
		}
		if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, inst.GetNamespace(), inst.GetName(), inst, nil); err != nil {
			return nil, err
		}
	}
	return &Result{}, nil
}
