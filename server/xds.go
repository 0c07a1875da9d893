// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	sotw "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	xdsserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/xds"
)

// The xDS surface (docs/xds.md): the aggregated discovery service on the
// client port, served from this server's own store by an xds.Feed, so
// every server answers, leader or not. Its rule (rules.go) is a reader of
// every namespace.

// registerXDS builds the feed (its commit hook must be in before the
// first write) and serves ADS on g; the feed runs from Serve.
func (s *Server) registerXDS(g *grpc.Server) *xdsClients {
	s.xds = xds.NewFeed(s.store, s.log)
	s.xdsCtx, s.stopXDS = context.WithCancel(context.Background())
	clients := xds.NewClients(s.cfg.Limits.XDSNamesPerStream)
	sotw := xdsserver.NewServer(s.xdsCtx, s.xds.Cache(), xdsserver.CallbackFuncs{
		StreamOpenFunc:   clients.OnStreamOpen,
		StreamClosedFunc: clients.OnStreamClosed,
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			if err := checkDiscoveryRequest(req, s.cfg.Limits.XDSNamesPerRequest); err != nil {
				return err
			}
			if err := clients.OnStreamRequest(id, req); err != nil {
				return status.Error(codes.ResourceExhausted, err.Error())
			}
			return nil
		},
		StreamResponseFunc: clients.OnStreamResponse,
	}, sotw.WithOrderedADS()) // responses leave in the order the caches produced them: make before break (internal/xds/feed.go)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, ads{sotw: sotw})
	svc := &xdsClients{clients: clients}
	svcregv1grpc.RegisterXDSServiceServer(g, svc)
	return svc
}

// xdsClients is XDSService: the xDS streams open on this server.
type xdsClients struct {
	svcregv1grpc.UnimplementedXDSServiceServer
	clients *xds.Clients
}

func (x *xdsClients) ListXDSClients(context.Context, *svcregv1.ListXDSClientsRequest) (*svcregv1.ListXDSClientsResponse, error) {
	return &svcregv1.ListXDSClientsResponse{Clients: x.clients.List()}, nil
}

// runXDS publishes the resources once this server has caught up with the
// cluster (before that a client's request waits: no view rather than an
// empty one), then follows every commit.
func (s *Server) runXDS(ctx context.Context) {
	if err := s.node.WaitCaughtUp(ctx); err != nil {
		return
	}
	s.xds.Run(ctx)
}

// ads is state-of-the-world ADS: no gRPC client speaks delta xDS.
type ads struct{ sotw xdsserver.Server }

func (a ads) StreamAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return a.sotw.StreamAggregatedResources(stream)
}

func (ads) DeltaAggregatedResources(discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return status.Error(codes.Unimplemented, "svcreg serves state-of-the-world xDS (StreamAggregatedResources); delta xDS is not served")
}

// servedTypes are the resource types the feed has.
var servedTypes = map[string]bool{resourcev3.ListenerType: true, resourcev3.ClusterType: true, resourcev3.EndpointType: true}

// maxResourceName bounds one resource name: svcreg's are
// "<service>.<namespace>:<port>", under 140 bytes.
const maxResourceName = 512

// checkDiscoveryRequest refuses a request for a type the registry does
// not serve, or with more names (or longer ones) than a request may
// carry, naming the field and the limit, before the cache sees it.
func checkDiscoveryRequest(req *discoveryv3.DiscoveryRequest, maxNames int) error {
	if !servedTypes[req.GetTypeUrl()] {
		return status.Errorf(codes.InvalidArgument, "type_url %.128q: svcreg serves %s, %s and %s",
			req.GetTypeUrl(), resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.EndpointType)
	}
	if n := len(req.GetResourceNames()); n > maxNames {
		return status.Errorf(codes.ResourceExhausted, "resource_names: %d names, at most %d per request (--max-xds-names)", n, maxNames)
	}
	for i, name := range req.GetResourceNames() {
		if len(name) > maxResourceName {
			return status.Errorf(codes.InvalidArgument, "resource_names[%d]: %d bytes, at most %d", i, len(name), maxResourceName)
		}
	}
	return nil
}
