// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package console

import (
	"context"
	"sort"

	"golang.org/x/sync/errgroup"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// pageSize is the most the API returns in one page.
const pageSize = 1000

func (c *Console) listServices(ctx context.Context, s Scope) ([]*svcregv1.Service, error) {
	var out []*svcregv1.Service
	req := &svcregv1.ListServicesRequest{Namespace: s.namespace(), LabelSelector: s.Selector, PageSize: pageSize}
	for {
		resp, err := c.API.ListServices(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetServices()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out, nil
		}
	}
}

func (c *Console) listInstances(ctx context.Context, s Scope) ([]*svcregv1.Instance, error) {
	var out []*svcregv1.Instance
	req := &svcregv1.ListInstancesRequest{Namespace: s.namespace(), LabelSelector: s.Selector, PageSize: pageSize}
	for {
		resp, err := c.API.ListInstances(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetInstances()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out, nil
		}
	}
}

// endpointsOf lists the endpoints of each service, a few at a time; an
// ExternalName service has none.
func (c *Console) endpointsOf(ctx context.Context, svcs []*svcregv1.Service) ([][]*svcregv1.Endpoint, error) {
	out := make([][]*svcregv1.Endpoint, len(svcs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, svc := range svcs {
		if svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME {
			continue
		}
		g.Go(func() error {
			resp, err := c.API.ListEndpoints(ctx, &svcregv1.ListEndpointsRequest{Namespace: svc.GetNamespace(), Service: svc.GetName()})
			if isNotFound(err) {
				return nil // deleted since the list
			}
			out[i] = resp.GetEndpoints()
			return err
		})
	}
	return out, g.Wait()
}

// onlyNamed keeps the objects called name (all when name is empty).
func onlyNamed[T interface{ GetName() string }](objs []T, name string) []T {
	if name == "" {
		return objs
	}
	var out []T
	for _, o := range objs {
		if o.GetName() == name {
			out = append(out, o)
		}
	}
	return out
}

func sortEndpoints(eps []*svcregv1.Endpoint) {
	sort.Slice(eps, func(i, j int) bool { return eps[i].GetInstance() < eps[j].GetInstance() })
}
