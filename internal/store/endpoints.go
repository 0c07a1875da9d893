// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"maps"
	"slices"
	"strconv"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/labels"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/servicemodel"
)

// derivesEndpoints reports whether svc's endpoints come from its selector
// (otherwise they are written by hand, or an EXTERNAL_NAME has none).
func derivesEndpoints(svc *svcregv1.Service) bool {
	return len(svc.GetSelector()) > 0 && svc.GetType() != svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME
}

// deriveEndpoint is the endpoint of inst in svc, or nil when svc does not
// select inst (docs/architecture.md, "Endpoints"; KEP-1672 conditions).
func deriveEndpoint(svc *svcregv1.Service, inst *svcregv1.Instance) *svcregv1.Endpoint {
	if inst == nil || !derivesEndpoints(svc) || !labels.MatchesMap(svc.GetSelector(), inst.GetLabels()) {
		return nil
	}
	serving := servicemodel.InstanceServing(inst)
	terminating := inst.GetTerminating()
	ready := svc.GetPublishNotReadyAddresses() || (serving && !terminating)
	ep := &svcregv1.Endpoint{
		Service:        svc.GetName(),
		Namespace:      svc.GetNamespace(),
		Instance:       inst.GetName(),
		Ip:             inst.GetIp(),
		Ready:          &ready,
		Serving:        &serving,
		Terminating:    terminating,
		Weight:         proto.Uint32(inst.GetWeight()),
		UpperThreshold: inst.UpperThreshold,
		LowerThreshold: inst.LowerThreshold,
		Zone:           inst.GetZone(),
		Node:           inst.GetNode(),
	}
	// Kubernetes publishes a pod's hostname under a service only when the
	// pod's subdomain is that service.
	if inst.GetHostname() != "" && inst.GetSubdomain() == svc.GetName() {
		ep.Hostname = inst.GetHostname()
	}
	for _, sp := range svc.GetPorts() {
		port, ok := resolveTargetPort(sp, inst)
		if !ok {
			continue
		}
		ep.Ports = append(ep.Ports, &svcregv1.EndpointPort{
			Name: sp.GetName(), Port: port, Protocol: sp.GetProtocol(), AppProtocol: sp.GetAppProtocol(),
		})
	}
	return ep
}

// resolveTargetPort maps a service port to the instance's port: a number as
// is, a name through the instance's port of that name and protocol
// (Kubernetes' FindPort).
func resolveTargetPort(sp *svcregv1.ServicePort, inst *svcregv1.Instance) (int32, bool) {
	if n, err := strconv.Atoi(sp.GetTargetPort()); err == nil {
		return int32(n), true
	}
	for _, ip := range inst.GetPorts() {
		if ip.GetName() == sp.GetTargetPort() && ip.GetProtocol() == sp.GetProtocol() {
			return ip.GetPort(), true
		}
	}
	return 0, false
}

// putEndpointTxn makes the stored endpoint at key equal want (nil: none),
// writing only when it differs, so that unchanged endpoints keep their
// revision and make no event.
func putEndpointTxn(txn *writeTxn, rev int64, namespace, service, instance string, want *svcregv1.Endpoint) error {
	existing, err := txn.First(tableEndpoints, indexID, meta.EndpointKey(namespace, service, instance))
	if err != nil {
		return err
	}
	switch {
	case want == nil && existing == nil:
		return nil
	case want == nil:
		return txn.Delete(tableEndpoints, existing)
	case existing != nil:
		want.ResourceVersion = existing.(*svcregv1.Endpoint).GetResourceVersion()
		if proto.Equal(want, existing.(proto.Message)) {
			return nil
		}
	}
	want.ResourceVersion = rev
	return txn.Replace(tableEndpoints, existing, want)
}

// syncServiceEndpointsTxn re-derives every endpoint of svc: instances are
// found through the label index of the selector's smallest pair. The
// endpoints of a service that was and is selectorless are hand-written and
// stay; a service that loses its selector loses its derived endpoints.
func syncServiceEndpointsTxn(txn *writeTxn, rev int64, svc *svcregv1.Service, wasDerived bool) error {
	existing, err := endpointsTxn(txn.Txn, svc.GetNamespace(), svc.GetName())
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(existing))
	if derivesEndpoints(svc) {
		k, v, _ := smallestPair(svc.GetSelector())
		it, err := txn.Get(tableInstances, indexLabel, labelKey(svc.GetNamespace(), k, v))
		if err != nil {
			return err
		}
		var matched []*svcregv1.Instance
		for obj := it.Next(); obj != nil; obj = it.Next() {
			matched = append(matched, obj.(*svcregv1.Instance))
		}
		for _, inst := range matched {
			if ep := deriveEndpoint(svc, inst); ep != nil {
				seen[inst.GetName()] = true
				if err := putEndpointTxn(txn, rev, svc.GetNamespace(), svc.GetName(), inst.GetName(), ep); err != nil {
					return err
				}
			}
		}
	} else if svc.GetType() != svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME && !wasDerived {
		for _, ep := range existing {
			seen[ep.GetInstance()] = true
		}
	}
	for _, ep := range existing {
		if !seen[ep.GetInstance()] {
			if err := txn.Delete(tableEndpoints, ep); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncInstanceEndpointsTxn re-derives the endpoints of one instance (old:
// before this write, nil for a create; inst: after it, nil for a delete)
// in the services that select it now or selected it before. Both come
// from the selector index, one lookup per label: a service that had an
// endpoint of the instance selected its old labels (a selector change
// re-derives all of its service's endpoints), so no index of endpoints by
// instance is needed. The cost is O(labels + matching services), not
// O(services).
func syncInstanceEndpointsTxn(txn *writeTxn, rev int64, namespace, name string, old, inst *svcregv1.Instance) error {
	services := map[string]*svcregv1.Service{}
	for _, labels := range []map[string]string{old.GetLabels(), inst.GetLabels()} {
		for k, v := range labels {
			it, err := txn.Get(tableServices, indexSelector, labelKey(namespace, k, v))
			if err != nil {
				return err
			}
			for obj := it.Next(); obj != nil; obj = it.Next() {
				if svc := obj.(*svcregv1.Service); derivesEndpoints(svc) {
					services[svc.GetName()] = svc
				}
			}
		}
	}
	// In name order: every replica emits the events in the same order.
	for _, svcName := range slices.Sorted(maps.Keys(services)) {
		if err := putEndpointTxn(txn, rev, namespace, svcName, name, deriveEndpoint(services[svcName], inst)); err != nil {
			return err
		}
	}
	return nil
}

// endpointsTxn returns the endpoints of a service in instance order.
func endpointsTxn(txn *memdb.Txn, namespace, service string) ([]*svcregv1.Endpoint, error) {
	it, err := txn.Get(tableEndpoints, indexID+"_prefix", meta.EndpointKey(namespace, service, ""))
	if err != nil {
		return nil, err
	}
	var eps []*svcregv1.Endpoint
	for obj := it.Next(); obj != nil; obj = it.Next() {
		eps = append(eps, obj.(*svcregv1.Endpoint))
	}
	return eps, nil
}
