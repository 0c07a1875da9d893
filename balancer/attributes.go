// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"

	"github.com/svcreg/svcreg/internal/ipvs"
)

// EndpointInfo is what the policy reads from a resolver endpoint: the
// registry endpoint's scheduling attributes (the svcreg resolver sets it;
// any resolver may).
type EndpointInfo = ipvs.EndpointInfo

type endpointInfoKey struct{}

// DefaultEndpointInfo is assumed for endpoints without EndpointInfo.
var DefaultEndpointInfo = ipvs.DefaultEndpointInfo

// SetEndpointInfo returns ep with info attached as an endpoint attribute
// (changing it does not re-dial the endpoint).
func SetEndpointInfo(ep resolver.Endpoint, info EndpointInfo) resolver.Endpoint {
	ep.Attributes = ep.Attributes.WithValue(endpointInfoKey{}, info)
	return ep
}

// GetEndpointInfo returns the EndpointInfo of ep, or DefaultEndpointInfo
// and false when it has none.
func GetEndpointInfo(ep resolver.Endpoint) (EndpointInfo, bool) {
	info, ok := ep.Attributes.Value(endpointInfoKey{}).(EndpointInfo)
	if !ok {
		return DefaultEndpointInfo, false
	}
	return info, true
}

// withXDSWeights gives endpoints from gRPC's xDS client, which carry no
// EndpointInfo but the weight xDS assigned them (gRFC A52: locality weight
// times endpoint weight, or their normalized fixed-point product), an
// EndpointInfo with that weight scaled so that the largest is ipvs.MaxWeight:
// the ratios are what the control plane sent.
func withXDSWeights(eps []resolver.Endpoint) []resolver.Endpoint {
	var top uint32
	for _, ep := range eps {
		if _, ok := GetEndpointInfo(ep); !ok {
			top = max(top, weight.FromEndpoint(ep).Weight)
		}
	}
	if top == 0 {
		return eps
	}
	for i, ep := range eps {
		if _, ok := GetEndpointInfo(ep); ok {
			continue
		}
		w := uint64(weight.FromEndpoint(ep).Weight)
		if top > ipvs.MaxWeight {
			w = max(1, w*ipvs.MaxWeight/uint64(top))
		}
		eps[i] = SetEndpointInfo(ep, EndpointInfo{Weight: uint32(w)})
	}
	return eps
}
