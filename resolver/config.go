// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package resolver

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"

	ipvsbalancer "github.com/svcreg/svcreg/balancer"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/servicemodel"
)

// ServiceConfigJSON is the gRPC service config of a service's policy
// (internal/servicemodel, Policy): the ipvs policy, or round_robin when
// the ipvs policy is not registered in this process.
func ServiceConfigJSON(svc *svcregv1.Service) string {
	if balancer.Get(ipvsbalancer.Name) == nil {
		return `{"loadBalancingConfig":[{"round_robin":{}}]}`
	}
	// Unset options are omitted, so the policy applies its defaults.
	js, _ := json.Marshal(map[string][]map[string]ipvs.Config{"loadBalancingConfig": {{ipvsbalancer.Name: servicemodel.Policy(svc)}}})
	return string(js)
}

// endpointsFor turns a view into resolver endpoints for the target's port:
// the service model's backends, each with the scheduling attributes the
// ipvs policy reads; an ExternalName service's one address is its name.
func endpointsFor(t Target, view endpointwatch.View, loc servicemodel.Locality) ([]resolver.Endpoint, error) {
	svc := view.Service
	port, err := servicemodel.FindPort(svc, t.PortName, t.Port)
	if err != nil {
		return nil, fmt.Errorf("svcreg: %w: name one in the target, as svcreg:///%s.%s:<port>", err, t.Service, t.Namespace)
	}
	if svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME {
		host := strings.TrimSuffix(svc.GetExternalName(), ".")
		n := t.Port
		if port != nil {
			n = port.GetPort()
		}
		if n == 0 {
			return nil, fmt.Errorf("svcreg: EXTERNAL_NAME service %s.%s has no port; name one in the target", t.Service, t.Namespace)
		}
		return []resolver.Endpoint{{Addresses: []resolver.Address{{Addr: net.JoinHostPort(host, strconv.Itoa(int(n)))}}}}, nil
	}
	backends, why := servicemodel.Route(svc, servicemodel.Backends(view.List(), port), loc)
	if why != "" {
		logger.Infof("svcreg:///%s.%s: %s", t.Service, t.Namespace, why)
	}
	out := make([]resolver.Endpoint, len(backends))
	for i, b := range backends {
		out[i] = ipvsbalancer.SetEndpointInfo(resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.Addr}}}, b.Info)
	}
	return out, nil
}
