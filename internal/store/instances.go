package store

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/validation"
)

var instanceFieldsNotWritable = map[string]bool{
	"name": true, "namespace": true, "uid": true, "resource_version": true, "etag": true,
	"create_time": true, "lease_expire_time": true,
}

func (s *Store) createInstanceTxn(ctx *applyCtx, req *svcregv1.CreateInstanceRequest) (*Result, error) {
	if req.GetInstance() == nil {
		return nil, validation.ErrorList{validation.Required("instance", "")}
	}
	inst := proto.Clone(req.GetInstance()).(*svcregv1.Instance)
	if inst.GetUid() == "" {
		return nil, fmt.Errorf("store: create without uid: the proposer sets it")
	}
	inst.ResourceVersion, inst.Etag, inst.CreateTime, inst.LeaseExpireTime = 0, "", nil, nil
	defaultInstance(inst)
	if errs := ValidateInstance(inst, "instance"); len(errs) > 0 {
		return nil, errs
	}
	if existing, err := instanceTxn(ctx.txn.Txn, inst.GetNamespace(), inst.GetName()); err == nil && existing != nil {
		return nil, alreadyExists("instances", inst.GetNamespace(), inst.GetName())
	}
	inst.CreateTime = timestamppb.New(ctx.time)
	inst.ResourceVersion, inst.Etag = ctx.rev, Etag(ctx.rev)
	if err := ctx.txn.Replace(tableInstances, nil, inst); err != nil {
		return nil, err
	}
	if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, inst.GetNamespace(), inst.GetName(), inst); err != nil {
		return nil, err
	}
	return &Result{Instance: inst}, nil
}

func (s *Store) updateInstanceTxn(ctx *applyCtx, req *svcregv1.UpdateInstanceRequest) (*Result, error) {
	patch := req.GetInstance()
	if patch == nil {
		return nil, validation.ErrorList{validation.Required("instance", "")}
	}
	namespace := namespaceOrDefault(patch.GetNamespace())
	old, err := instanceTxn(ctx.txn.Txn, namespace, patch.GetName())
	if err != nil {
		return nil, err
	}
	if !preconditionHolds(patch.GetEtag(), patch.GetResourceVersion(), old.GetEtag(), old.GetResourceVersion()) {
		return nil, conflict("instances", namespace, patch.GetName())
	}
	inst := proto.Clone(old).(*svcregv1.Instance)
	if errs := mergeMask(inst, patch, req.GetUpdateMask().GetPaths(), instanceFieldsNotWritable, "update_mask"); len(errs) > 0 {
		return nil, errs
	}
	defaultInstance(inst)
	if errs := ValidateInstance(inst, "instance"); len(errs) > 0 {
		return nil, errs
	}
	if proto.Equal(inst, old) {
		return &Result{Instance: old}, nil
	}
	inst.ResourceVersion, inst.Etag = ctx.rev, Etag(ctx.rev)
	if err := ctx.txn.Replace(tableInstances, old, inst); err != nil {
		return nil, err
	}
	if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, namespace, inst.GetName(), inst); err != nil {
		return nil, err
	}
	return &Result{Instance: inst}, nil
}

func (s *Store) deleteInstanceTxn(ctx *applyCtx, req *svcregv1.DeleteInstanceRequest) (*Result, error) {
	namespace := namespaceOrDefault(req.GetNamespace())
	old, err := instanceTxn(ctx.txn.Txn, namespace, req.GetName())
	if err != nil {
		return nil, err
	}
	if !preconditionHolds(req.GetEtag(), 0, old.GetEtag(), old.GetResourceVersion()) {
		return nil, conflict("instances", namespace, req.GetName())
	}
	if err := ctx.txn.Delete(tableInstances, old); err != nil {
		return nil, err
	}
	if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, namespace, req.GetName(), nil); err != nil {
		return nil, err
	}
	return &Result{Instance: old}, nil
}
