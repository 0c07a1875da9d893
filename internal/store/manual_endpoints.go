// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"strconv"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/validation"
)

// replacementTxn is ReplaceEndpoints' check against the state: the
// selectorless service and the endpoints it is to have, normalized and
// validated. Nothing is written.
func (s *Store) replacementTxn(txn *memdb.Txn, req *svcregv1.ReplaceEndpointsRequest) (*svcregv1.Service, []*svcregv1.Endpoint, error) {
	svc, err := serviceTxn(txn, meta.Namespace(req.GetNamespace()), req.GetService())
	if err != nil {
		return nil, nil, err
	}
	switch {
	case derivesEndpoints(svc):
		return nil, nil, &Error{ErrFailedPrecondition, fmt.Sprintf("service %q has a selector: its endpoints are derived from the instances it selects", svc.GetName())}
	case svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME:
		return nil, nil, &Error{ErrFailedPrecondition, fmt.Sprintf("service %q is EXTERNAL_NAME: it has no endpoints", svc.GetName())}
	}
	want := make([]*svcregv1.Endpoint, len(req.GetEndpoints()))
	var errs validation.ErrorList
	names := map[string]bool{}
	for i, in := range req.GetEndpoints() {
		field := validation.Path("endpoints").Index(i)
		ep, epErrs := normalizeEndpoint(svc, in, field)
		errs = append(errs, epErrs...)
		if names[ep.GetInstance()] {
			errs = append(errs, validation.Duplicate(field.Child("instance"), ep.GetInstance()))
		}
		names[ep.GetInstance()] = true
		want[i] = ep
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return svc, want, nil
}

// replaceEndpointsTxn sets the hand-written endpoints of a selectorless
// service (Kubernetes' Endpoints for a service without selector). Only the
// endpoints that differ are written.
func (s *Store) replaceEndpointsTxn(ctx *applyCtx, req *svcregv1.ReplaceEndpointsRequest) (*Result, error) {
	svc, want, err := s.replacementTxn(ctx.txn.Txn, req)
	if err != nil {
		return nil, err
	}
	namespace := svc.GetNamespace()
	names := make(map[string]bool, len(want))
	for _, ep := range want {
		names[ep.GetInstance()] = true
	}
	existing, err := endpointsTxn(ctx.txn.Txn, namespace, svc.GetName())
	if err != nil {
		return nil, err
	}
	for _, ep := range existing {
		if !names[ep.GetInstance()] {
			if err := ctx.txn.Delete(tableEndpoints, ep); err != nil {
				return nil, err
			}
		}
	}
	for _, ep := range want {
		if err := putEndpointTxn(ctx.txn, ctx.rev, namespace, svc.GetName(), ep.GetInstance(), ep); err != nil {
			return nil, err
		}
	}
	eps, err := endpointsTxn(ctx.txn.Txn, namespace, svc.GetName())
	if err != nil {
		return nil, err
	}
	return &Result{Endpoints: eps}, nil
}

// normalizeEndpoint validates a hand-written endpoint and fills what the
// service implies: namespace and service, port numbers and protocols, and
// the EndpointSlice defaults (ready unset = true, serving unset = ready).
func normalizeEndpoint(svc *svcregv1.Service, in *svcregv1.Endpoint, field validation.Path) (*svcregv1.Endpoint, validation.ErrorList) {
	ep := &svcregv1.Endpoint{}
	if in != nil {
		ep = proto.Clone(in).(*svcregv1.Endpoint)
	}
	var errs validation.ErrorList
	if ep.Namespace != "" && ep.Namespace != svc.GetNamespace() {
		errs = append(errs, validation.Invalid(field.Child("namespace"), ep.Namespace, "must be empty or the service's namespace"))
	}
	if ep.Service != "" && ep.Service != svc.GetName() {
		errs = append(errs, validation.Invalid(field.Child("service"), ep.Service, "must be empty or the service's name"))
	}
	ep.Namespace, ep.Service, ep.ResourceVersion = svc.GetNamespace(), svc.GetName(), 0
	errs = append(errs, validateName(ep.GetInstance(), field.Child("instance"), validation.IsDNS1123Subdomain)...)
	if ep.GetIp() == "" {
		errs = append(errs, validation.Required(field.Child("ip"), ""))
	} else {
		errs = append(errs, validation.Invalids(field.Child("ip"), ep.GetIp(), validation.IsValidEndpointIP(ep.GetIp()))...)
	}
	if ep.Ready == nil {
		ep.Ready = proto.Bool(true)
	}
	if ep.Serving == nil {
		ep.Serving = proto.Bool(ep.GetReady())
	}
	if ep.Weight == nil {
		ep.Weight = proto.Uint32(1)
	}
	errs = append(errs, validateBackendTuning(ep.GetWeight(), ep.UpperThreshold, ep.LowerThreshold, field)...)
	for _, f := range []struct{ name, value string }{{"zone", ep.GetZone()}, {"node", ep.GetNode()}} {
		if f.value != "" {
			errs = append(errs, validation.Invalids(field.Child(f.name), f.value, validation.IsValidLabelValue(f.value))...)
		}
	}
	if ep.GetHostname() != "" {
		errs = append(errs, validation.Invalids(field.Child("hostname"), ep.GetHostname(), validation.IsDNS1123Label(ep.GetHostname()))...)
	}
	if len(ep.GetPorts()) == 0 {
		// Without ports, every service port with a numeric target applies.
		for _, sp := range svc.GetPorts() {
			if n, err := strconv.Atoi(sp.GetTargetPort()); err == nil {
				ep.Ports = append(ep.Ports, &svcregv1.EndpointPort{Name: sp.GetName(), Port: int32(n), Protocol: sp.GetProtocol(), AppProtocol: sp.GetAppProtocol()})
			}
		}
		return ep, errs
	}
	seen := map[string]bool{}
	for j, p := range ep.GetPorts() {
		pf := field.Child("ports").Index(j)
		sp := servicePortNamed(svc, p.GetName())
		if sp == nil {
			errs = append(errs, validation.Invalid(pf.Child("name"), p.GetName(), "must name a port of the service"))
			continue
		}
		if seen[p.GetName()] {
			errs = append(errs, validation.Duplicate(pf.Child("name"), p.GetName()))
		}
		seen[p.GetName()] = true
		errs = append(errs, validation.Invalids(pf.Child("port"), p.GetPort(), validation.IsValidPortNum(int64(p.GetPort())))...)
		if p.Protocol == svcregv1.Protocol_PROTOCOL_UNSPECIFIED {
			p.Protocol = sp.GetProtocol()
		}
		if p.GetProtocol() != sp.GetProtocol() {
			errs = append(errs, validation.Invalid(pf.Child("protocol"), p.GetProtocol().String(), "must be the service port's protocol"))
		}
		if p.AppProtocol == "" {
			p.AppProtocol = sp.GetAppProtocol()
		}
	}
	return ep, errs
}

func servicePortNamed(svc *svcregv1.Service, name string) *svcregv1.ServicePort {
	for _, sp := range svc.GetPorts() {
		if sp.GetName() == name {
			return sp
		}
	}
	return nil
}
