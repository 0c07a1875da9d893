// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package xds serves the registry to proxyless gRPC clients of every
// language over the xDS protocol (docs/xds.md): an aggregated discovery
// service (state of the world, gRFC A27) whose Listener, Cluster and
// ClusterLoadAssignment resources are built from each node's local store
// and pushed to the clients subscribed to them as soon as a change
// commits.
package xds

import (
	"net"
	"slices"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/servicemodel"
)

// resourceName is the name of a service port's Listener, Cluster and
// ClusterLoadAssignment: the host of the target `xds:///<name>`, which
// gRPC asks for as the Listener's name (gRFC A27's default template).
func resourceName(namespace, service string, port int32) string {
	return service + "." + namespace + ":" + strconv.Itoa(int(port))
}

// serviceResources are one service's resources, one set per port, keyed
// by name. A service with no port has none (a target must name a port).
type serviceResources struct {
	listeners   map[string]*listenerv3.Listener
	clusters    map[string]*clusterv3.Cluster
	assignments map[string]*endpointv3.ClusterLoadAssignment
	// zoned are, for a service that prefers close endpoints, the
	// assignments its clients in a zone get (by zone, then name) where
	// they differ from assignments; zones are its endpoints' zones.
	zoned map[string]map[string]*endpointv3.ClusterLoadAssignment
	zones []string
}

// assignmentIn is the assignment a client in zone gets.
func (r serviceResources) assignmentIn(zone, name string) *endpointv3.ClusterLoadAssignment {
	if cla, ok := r.zoned[zone][name]; ok {
		return cla
	}
	return r.assignments[name]
}

func buildService(svc *svcregv1.Service, eps []*svcregv1.Endpoint) serviceResources {
	out := serviceResources{listeners: map[string]*listenerv3.Listener{}, clusters: map[string]*clusterv3.Cluster{},
		assignments: map[string]*endpointv3.ClusterLoadAssignment{}}
	pol := policyFor(svc)
	for _, sp := range svc.GetPorts() {
		name := resourceName(svc.GetNamespace(), svc.GetName(), sp.GetPort())
		out.listeners[name] = listener(name, pol.hashPolicy)
		if svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME {
			out.clusters[name] = externalCluster(name, svc.GetExternalName(), sp.GetPort())
			continue
		}
		out.clusters[name] = edsCluster(name, pol.policies)
		out.clusters[name].OutlierDetection = outlierDetection(svc)
		backends := servicemodel.Backends(eps, sp)
		out.assignments[name] = assignment(name, backends, nil)
		if svc.GetTrafficDistribution() == svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_UNSPECIFIED {
			continue
		}
		for _, zone := range zonesOf(eps) {
			routed, _ := servicemodel.Route(svc, backends, servicemodel.Locality{Zone: zone})
			if len(routed) == len(backends) {
				continue // the zone prefers nothing: the default serves it
			}
			if out.zoned == nil {
				out.zoned = map[string]map[string]*endpointv3.ClusterLoadAssignment{}
			}
			if out.zoned[zone] == nil {
				out.zoned[zone] = map[string]*endpointv3.ClusterLoadAssignment{}
			}
			preferred := map[string]bool{}
			for _, b := range routed {
				preferred[b.Addr] = true
			}
			out.zoned[zone][name] = assignment(name, backends, preferred)
		}
	}
	out.zones = zonesOf(eps)
	return out
}

// zonesOf are the endpoints' zones, sorted.
func zonesOf(eps []*svcregv1.Endpoint) []string {
	var zones []string
	for _, ep := range eps {
		if z := ep.GetZone(); z != "" && !slices.Contains(zones, z) {
			zones = append(zones, z)
		}
	}
	slices.Sort(zones)
	return zones
}

// listener is a gRPC client's Listener (gRFC A27): an API listener whose
// HttpConnectionManager carries its route configuration inline, every
// RPC routed to the cluster of the same name, and the router filter.
func listener(name string, hash []*routev3.RouteAction_HashPolicy) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: name,
			VirtualHosts: []*routev3.VirtualHost{{Name: name, Domains: []string{"*"}, Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: ""}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}, HashPolicy: hash}},
			}}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}}},
	}
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)}}
}

func edsCluster(name string, policies []*clusterv3.LoadBalancingPolicy_Policy) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: name,
			EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}},
		LoadBalancingPolicy: &clusterv3.LoadBalancingPolicy{Policies: policies},
	}
}

// externalCluster is an ExternalName service's Cluster: LOGICAL_DNS on the
// external name (gRFC A37), which the client resolves itself, as DNS
// answers the service with a CNAME.
func externalCluster(name, host string, port int32) *clusterv3.Cluster {
	host = strings.TrimSuffix(host, ".")
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: socketAddress(host, port)}}}}}}},
	}
}

// assignment lists a service port's backends (internal/servicemodel):
// with preferred (the topology rule's choice for a zone's clients, gRFC
// A27 priorities), the preferred at priority 0 and the others at 1, so a
// client uses its zone and fails over when it drains;
// those that take new traffic (servicemodel.Active) HEALTHY, the others
// (terminating, while a ready one can take requests) DRAINING, which
// clients do not use. Quiesced ones (weight 0) are left out: an EDS weight
// is at least 1. Each endpoint is a locality of its own whose weight is
// the endpoint's (the zone label is the locality's zone): wrr_locality,
// the policy gRPC clients of every language have, then balances by the
// endpoints' weights, and ring_hash multiplies locality and endpoint
// weight (the endpoint's is 1).
func assignment(name string, backends []servicemodel.Backend, preferred map[string]bool) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	for _, b := range backends {
		if b.Info.Weight == 0 {
			continue
		}
		health := corev3.HealthStatus_DRAINING
		if servicemodel.Active(backends, b) {
			health = corev3.HealthStatus_HEALTHY
		}
		priority := uint32(0)
		if preferred != nil && !preferred[b.Addr] {
			priority = 1
		}
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
			Priority:            priority,
			Locality:            &corev3.Locality{Zone: b.Info.Zone, SubZone: b.Endpoint.GetInstance()},
			LoadBalancingWeight: wrapperspb.UInt32(b.Info.Weight),
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier:      &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(b.Endpoint.GetIp(), b.Port)}},
				HealthStatus:        health,
				LoadBalancingWeight: wrapperspb.UInt32(1),
			}},
		})
	}
	return cla
}

func socketAddress(host string, port int32) *corev3.Address {
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}}
}

// mustAny packs a message we built; it fails only for a message with no
// registered type, which is a bug here.
func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}
