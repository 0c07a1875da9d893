// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"crypto/rand"
	"fmt"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/labels"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
)

// registryServer is svcreg.v1.RegistryService: one gRPC service, served by
// small types that each own a part of it and hold only what that part
// needs.
type registryServer struct {
	unimplemented
	*objects   // services, instances and endpoints (this file)
	*watches   // watch.go
	*leases    // leases.go
	*discovery // discovery.go
}

// unimplemented answers methods added to the API and not served yet. It is
// embedded one level deeper than the parts, so theirs win.
type unimplemented struct {
	svcregv1grpc.UnimplementedRegistryServiceServer
}

// objects serves the CRUD methods: reads through the router, writes as
// commands. Errors are domain errors; the interceptors convert them.
type objects struct {
	router *router
	writer *writer
	leases leaseDeadlines
	limits Limits
}

// leaseDeadlines tells when an instance's lease lapses (leases live in the
// leader's memory, not in the stored object).
type leaseDeadlines interface {
	withLease(*svcregv1.Instance) *svcregv1.Instance
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (o *objects) CreateService(ctx context.Context, req *svcregv1.CreateServiceRequest) (*svcregv1.CreateServiceResponse, error) {
	if req.GetService() != nil {
		req.Service.Uid = newUID()
	}
	res, err := o.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_CreateService{CreateService: req} })
	if err != nil {
		return nil, err
	}
	return &svcregv1.CreateServiceResponse{Service: res.Service}, nil
}

func (o *objects) GetService(ctx context.Context, req *svcregv1.GetServiceRequest) (*svcregv1.GetServiceResponse, error) {
	ns, err := objectRef(store.KindService, req.GetNamespace(), req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	return read(ctx, o.router, req, req.GetConsistency(), req.GetMinRevision(), svcregv1grpc.RegistryServiceClient.GetService,
		func(tx *store.ReadTxn) (*svcregv1.GetServiceResponse, error) {
			svc, err := tx.Service(ns, req.GetName())
			return &svcregv1.GetServiceResponse{Service: svc}, err
		})
}

func (o *objects) ListServices(ctx context.Context, req *svcregv1.ListServicesRequest) (*svcregv1.ListServicesResponse, error) {
	q, err := o.listQuery(req.GetNamespace(), req.GetPageSize(), req.GetPageToken(), req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	if q.Namespace == meta.AllNamespaces {
		q.Visible = visibleTo(ctx)
	}
	return read(ctx, o.router, req, req.GetConsistency(), req.GetMinRevision(), svcregv1grpc.RegistryServiceClient.ListServices,
		func(tx *store.ReadTxn) (*svcregv1.ListServicesResponse, error) {
			page, err := tx.ListServices(q)
			return &svcregv1.ListServicesResponse{Services: page.Items, ResourceVersion: tx.Revision(),
				NextPageToken: encodePageToken(page.Next, q.Namespace, q.Selector.String())}, err
		})
}

func (o *objects) UpdateService(ctx context.Context, req *svcregv1.UpdateServiceRequest) (*svcregv1.UpdateServiceResponse, error) {
	res, err := o.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_UpdateService{UpdateService: req} })
	if err != nil {
		return nil, err
	}
	return &svcregv1.UpdateServiceResponse{Service: res.Service}, nil
}

func (o *objects) DeleteService(ctx context.Context, req *svcregv1.DeleteServiceRequest) (*svcregv1.DeleteServiceResponse, error) {
	res, err := o.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_DeleteService{DeleteService: req} })
	if err != nil {
		return nil, err
	}
	return &svcregv1.DeleteServiceResponse{ResourceVersion: res.Revision}, nil
}

func (o *objects) CreateInstance(ctx context.Context, req *svcregv1.CreateInstanceRequest) (*svcregv1.CreateInstanceResponse, error) {
	if req.GetInstance() != nil {
		req.Instance.Uid = newUID()
	}
	res, err := o.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_CreateInstance{CreateInstance: req} })
	if err != nil {
		return nil, err
	}
	return &svcregv1.CreateInstanceResponse{Instance: o.leases.withLease(res.Instance)}, nil
}

func (o *objects) GetInstance(ctx context.Context, req *svcregv1.GetInstanceRequest) (*svcregv1.GetInstanceResponse, error) {
	ns, err := objectRef(store.KindInstance, req.GetNamespace(), req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	return read(ctx, o.router, req, req.GetConsistency(), req.GetMinRevision(), svcregv1grpc.RegistryServiceClient.GetInstance,
		func(tx *store.ReadTxn) (*svcregv1.GetInstanceResponse, error) {
			inst, err := tx.Instance(ns, req.GetName())
			return &svcregv1.GetInstanceResponse{Instance: o.leases.withLease(inst)}, err
		})
}

func (o *objects) ListInstances(ctx context.Context, req *svcregv1.ListInstancesRequest) (*svcregv1.ListInstancesResponse, error) {
	q, err := o.listQuery(req.GetNamespace(), req.GetPageSize(), req.GetPageToken(), req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	if q.Namespace == meta.AllNamespaces {
		q.Visible = visibleTo(ctx)
	}
	return read(ctx, o.router, req, req.GetConsistency(), req.GetMinRevision(), svcregv1grpc.RegistryServiceClient.ListInstances,
		func(tx *store.ReadTxn) (*svcregv1.ListInstancesResponse, error) {
			page, err := tx.ListInstances(q)
			for i, inst := range page.Items {
				page.Items[i] = o.leases.withLease(inst)
			}
			return &svcregv1.ListInstancesResponse{Instances: page.Items, ResourceVersion: tx.Revision(),
				NextPageToken: encodePageToken(page.Next, q.Namespace, q.Selector.String())}, err
		})
}

func (o *objects) UpdateInstance(ctx context.Context, req *svcregv1.UpdateInstanceRequest) (*svcregv1.UpdateInstanceResponse, error) {
	res, err := o.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_UpdateInstance{UpdateInstance: req} })
	if err != nil {
		return nil, err
	}
	return &svcregv1.UpdateInstanceResponse{Instance: o.leases.withLease(res.Instance)}, nil
}

func (o *objects) DeleteInstance(ctx context.Context, req *svcregv1.DeleteInstanceRequest) (*svcregv1.DeleteInstanceResponse, error) {
	res, err := o.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_DeleteInstance{DeleteInstance: req} })
	if err != nil {
		return nil, err
	}
	return &svcregv1.DeleteInstanceResponse{ResourceVersion: res.Revision}, nil
}

// ReportProbeResult records a prober's transition (docs/health.md).
func (o *objects) ReportProbeResult(ctx context.Context, req *svcregv1.ReportProbeResultRequest) (*svcregv1.ReportProbeResultResponse, error) {
	res, err := o.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_ReportProbe{ReportProbe: req} })
	if err != nil {
		return nil, err
	}
	return &svcregv1.ReportProbeResultResponse{Instance: res.Instance}, nil
}

func (o *objects) ListEndpoints(ctx context.Context, req *svcregv1.ListEndpointsRequest) (*svcregv1.ListEndpointsResponse, error) {
	ns, err := objectRef(store.KindService, req.GetNamespace(), req.GetService(), "service")
	if err != nil {
		return nil, err
	}
	return read(ctx, o.router, req, req.GetConsistency(), req.GetMinRevision(), svcregv1grpc.RegistryServiceClient.ListEndpoints,
		func(tx *store.ReadTxn) (*svcregv1.ListEndpointsResponse, error) {
			if _, err := tx.Service(ns, req.GetService()); err != nil {
				return nil, err
			}
			eps, err := tx.Endpoints(ns, req.GetService())
			return &svcregv1.ListEndpointsResponse{Endpoints: eps, ResourceVersion: tx.Revision()}, err
		})
}

func (o *objects) ReplaceEndpoints(ctx context.Context, req *svcregv1.ReplaceEndpointsRequest) (*svcregv1.ReplaceEndpointsResponse, error) {
	res, err := o.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_ReplaceEndpoints{ReplaceEndpoints: req} })
	if err != nil {
		return nil, err
	}
	return &svcregv1.ReplaceEndpointsResponse{Endpoints: res.Endpoints, ResourceVersion: res.Revision}, nil
}

// objectRef checks the namespace and name of a request that names one
// object, and defaults the namespace.
func objectRef(kind store.Kind, namespace, name string, nameField validation.Path) (string, error) {
	namespace = meta.Namespace(namespace)
	return namespace, store.ObjectRef(kind, namespace, name, "namespace", nameField).Err()
}

// listQuery checks and decodes the common list parameters.
func (o *objects) listQuery(namespace string, size int32, token, selector string) (store.ListQuery, error) {
	return listQuery(namespace, size, token, selector, o.limits.SelectorRequirements)
}

func listQuery(namespace string, size int32, token, selector string, maxRequirements int) (store.ListQuery, error) {
	namespace = meta.Namespace(namespace)
	var errs validation.ErrorList
	if namespace != meta.AllNamespaces {
		errs = append(errs, validation.Invalids("namespace", namespace, validation.IsDNS1123Label(namespace))...)
	}
	limit, err := pageSize(size)
	if err != nil {
		errs = append(errs, err.(validation.ErrorList)...)
	}
	sel, err := labels.ParseLimited(selector, maxRequirements)
	if err != nil {
		errs = append(errs, validation.Invalid("label_selector", selector, err.Error()))
	}
	if len(errs) > 0 {
		return store.ListQuery{}, errs
	}
	after, err := decodePageToken(token, namespace, sel.String())
	if err != nil {
		return store.ListQuery{}, err
	}
	return store.ListQuery{Namespace: namespace, After: after, Limit: limit, Selector: sel}, nil
}
