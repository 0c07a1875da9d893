// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/validation"
)

// serviceFieldsNotWritable are never taken from a request: identity and
// output-only fields, and the etag, which is a precondition.
var serviceFieldsNotWritable = map[string]bool{
	"name": true, "namespace": true, "uid": true, "resource_version": true, "etag": true, "create_time": true,
}

// Etag renders a revision as an entity tag (AIP-154).
func Etag(rev int64) string { return strconv.FormatInt(rev, 10) }

// prepareService is a create's stateless part: the service with output-only
// fields cleared and defaults filled, validated.
func prepareService(in *svcregv1.Service, lim Limits) (*svcregv1.Service, validation.ErrorList) {
	if in == nil {
		return nil, validation.ErrorList{validation.Required("service", "")}
	}
	svc := proto.Clone(in).(*svcregv1.Service)
	svc.ResourceVersion, svc.Etag, svc.CreateTime = 0, "", nil
	defaultService(svc)
	return svc, ValidateService(svc, "service", lim)
}

// createServiceTxn stores a prepared service: the state decides only
// whether the name is free and what it is allocated.
func (s *Store) createServiceTxn(ctx *applyCtx, req *svcregv1.CreateServiceRequest) (*Result, error) {
	svc := proto.Clone(req.GetService()).(*svcregv1.Service)
	if svc.GetUid() == "" || svc.GetName() == "" {
		return nil, fmt.Errorf("store: create of an unprepared service: the proposer prepares it and sets its uid")
	}
	if err := nameFreeTxn(ctx.txn.Txn, tableServices, svc.GetNamespace(), svc.GetName()); err != nil {
		return nil, err
	}
	if err := s.allocateServiceTxn(ctx, svc, nil); err != nil {
		return nil, err
	}
	svc.CreateTime = timestamppb.New(ctx.time)
	svc.ResourceVersion, svc.Etag = ctx.rev, Etag(ctx.rev)
	if err := ctx.txn.Replace(tableServices, nil, svc); err != nil {
		return nil, err
	}
	if err := syncServiceEndpointsTxn(ctx.txn, ctx.rev, svc, false); err != nil {
		return nil, err
	}
	return &Result{Service: svc}, nil
}

// mergeServiceTxn is an update's check against the state: the stored
// service (which must match the request's preconditions) and the updated
// one, defaulted and validated. Nothing is written.
func (s *Store) mergeServiceTxn(txn *memdb.Txn, req *svcregv1.UpdateServiceRequest) (old, svc *svcregv1.Service, err error) {
	patch := req.GetService()
	namespace := meta.Namespace(patch.GetNamespace())
	if old, err = serviceTxn(txn, namespace, patch.GetName()); err != nil {
		return nil, nil, err
	}
	if !preconditionHolds(patch.GetEtag(), patch.GetResourceVersion(), old.GetEtag(), old.GetResourceVersion()) {
		return nil, nil, conflict("services", namespace, patch.GetName())
	}
	svc = proto.Clone(old).(*svcregv1.Service)
	if errs := mergeMask(svc, patch, req.GetUpdateMask().GetPaths(), serviceFieldsNotWritable, "update_mask"); len(errs) > 0 {
		return nil, nil, errs
	}
	clearSchedulerOptions(old, svc, patch)
	defaultService(svc)
	externalName := func(s *svcregv1.Service) bool { return s.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME }
	// Kubernetes keeps the allocated IP when an update leaves it out.
	if svc.GetClusterIp() == "" && !externalName(old) && !externalName(svc) {
		svc.ClusterIp = old.GetClusterIp()
	}
	errs := ValidateService(svc, "service", s.cfg.Limits)
	if !externalName(old) && !externalName(svc) && svc.GetClusterIp() != old.GetClusterIp() {
		errs = append(errs, validation.Invalid("service.cluster_ip", svc.GetClusterIp(), "field is immutable"))
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return old, svc, nil
}

func (s *Store) updateServiceTxn(ctx *applyCtx, req *svcregv1.UpdateServiceRequest) (*Result, error) {
	old, svc, err := s.mergeServiceTxn(ctx.txn.Txn, req)
	if err != nil {
		return nil, err
	}
	if err := s.allocateServiceTxn(ctx, svc, old); err != nil {
		return nil, err
	}
	svc.ResourceVersion, svc.Etag = old.GetResourceVersion(), old.GetEtag()
	if proto.Equal(svc, old) {
		return &Result{Service: old}, nil
	}
	svc.ResourceVersion, svc.Etag = ctx.rev, Etag(ctx.rev)
	if err := ctx.txn.Replace(tableServices, old, svc); err != nil {
		return nil, err
	}
	if endpointsShapeChanged(old, svc) {
		if err := syncServiceEndpointsTxn(ctx.txn, ctx.rev, svc, derivesEndpoints(old)); err != nil {
			return nil, err
		}
	}
	return &Result{Service: svc}, nil
}

// endpointsShapeChanged reports whether a service change can change its
// endpoints: its selector, ports, type or publish_not_ready_addresses.
func endpointsShapeChanged(old, svc *svcregv1.Service) bool {
	shape := func(s *svcregv1.Service) *svcregv1.Service {
		return &svcregv1.Service{Selector: s.GetSelector(), Ports: s.GetPorts(), Type: s.GetType(),
			PublishNotReadyAddresses: s.GetPublishNotReadyAddresses()}
	}
	return !proto.Equal(shape(old), shape(svc))
}

// deletableServiceTxn is a delete's check: the service, which must match
// the request's etag.
func deletableServiceTxn(txn *memdb.Txn, req *svcregv1.DeleteServiceRequest) (*svcregv1.Service, error) {
	namespace := meta.Namespace(req.GetNamespace())
	old, err := serviceTxn(txn, namespace, req.GetName())
	if err != nil {
		return nil, err
	}
	if !preconditionHolds(req.GetEtag(), 0, old.GetEtag(), old.GetResourceVersion()) {
		return nil, conflict("services", namespace, req.GetName())
	}
	return old, nil
}

func (s *Store) deleteServiceTxn(ctx *applyCtx, req *svcregv1.DeleteServiceRequest) (*Result, error) {
	old, err := deletableServiceTxn(ctx.txn.Txn, req)
	if err != nil {
		return nil, err
	}
	namespace := old.GetNamespace()
	if err := ctx.txn.Delete(tableServices, old); err != nil {
		return nil, err
	}
	if _, err := ctx.txn.DeletePrefix(tableEndpoints, indexID+"_prefix", meta.EndpointKey(namespace, old.GetName(), "")); err != nil {
		return nil, err
	}
	if err := releaseAllTxn(ctx.txn.Txn, meta.Key(namespace, old.GetName()), nil); err != nil {
		return nil, err
	}
	return &Result{Service: old}, nil
}

// allocateServiceTxn gives svc its cluster IP and node ports (keeping old's
// where svc leaves them unset) and releases what it no longer holds.
func (s *Store) allocateServiceTxn(ctx *applyCtx, svc, old *svcregv1.Service) error {
	owner := meta.Key(svc.GetNamespace(), svc.GetName())
	keep := map[string]bool{}
	if svc.GetType() != svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME && svc.GetClusterIp() != meta.ClusterIPNone {
		var want netip.Addr
		if svc.GetClusterIp() != "" {
			want, _ = validation.ParseIP(svc.GetClusterIp()) // validated
		}
		ip, err := s.allocateIPTxn(ctx.txn.Txn, owner, want, "service.cluster_ip")
		if err != nil {
			return err
		}
		svc.ClusterIp = ip.String()
		keep[ipAllocationKey(ip)] = true
	}
	if t := svc.GetType(); t == svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT || t == svcregv1.ServiceType_SERVICE_TYPE_LOAD_BALANCER {
		for i, p := range svc.GetPorts() {
			want := p.GetNodePort()
			if want == 0 {
				want = previousNodePort(old, p)
			}
			np, err := s.allocatePortTxn(ctx.txn.Txn, owner, want, fmt.Sprintf("%s/%d/%d", owner, i, p.GetPort()),
				validation.Path("service.ports").Index(i).Child("node_port"))
			if err != nil {
				return err
			}
			p.NodePort = np
			keep[portAllocationKey(np)] = true
		}
	}
	return releaseAllTxn(ctx.txn.Txn, owner, keep)
}

// previousNodePort is the node port old gave the same port (by name, or by
// number and protocol when unnamed), so that updates keep node ports.
func previousNodePort(old *svcregv1.Service, p *svcregv1.ServicePort) int32 {
	for _, op := range old.GetPorts() {
		sameName := p.GetName() != "" && op.GetName() == p.GetName()
		samePort := p.GetName() == "" && op.GetPort() == p.GetPort() && op.GetProtocol() == p.GetProtocol()
		if sameName || samePort {
			return op.GetNodePort()
		}
	}
	return 0
}

// preconditionHolds checks AIP-154 etags and Kubernetes resource versions:
// unset means unconditional.
func preconditionHolds(etag string, rv int64, currentEtag string, currentRV int64) bool {
	return (etag == "" || etag == currentEtag) && (rv == 0 || rv == currentRV)
}

// clearSchedulerOptions drops, when an update changes the scheduler, the
// options the new one does not take and the update did not set itself:
// moving from sh with a fallback to lc must not need a second edit
// (docs/ipvs.md).
func clearSchedulerOptions(old, svc, patch *svcregv1.Service) {
	o := svc.GetSchedulerOptions()
	if o == nil || svc.GetScheduler() == old.GetScheduler() || patch.GetSchedulerOptions().GetFallback() {
		return
	}
	if o.GetFallback() && !ipvs.HasFallback(svc.GetScheduler()) {
		o.Fallback = false
	}
}
