package resolver

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"

	ipvsbalancer "github.com/svcreg/svcreg/balancer"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/ipvs"
)

// ServiceConfigJSON is the gRPC service config a service's scheduler,
// scheduler options and session affinity call for: the ipvs policy, or
// round_robin when the ipvs policy is not registered in this process.
func ServiceConfigJSON(svc *svcregv1.Service) string {
	if balancer.Get(ipvsbalancer.Name) == nil {
		return `{"loadBalancingConfig":[{"round_robin":{}}]}`
	}
	// Unset options are omitted, so the policy applies its defaults.
	js, _ := json.Marshal(map[string][]map[string]ipvsbalancer.Config{"loadBalancingConfig": {{ipvsbalancer.Name: PolicyConfig(svc)}}})
	return string(js)
}

// PolicyConfig is the ipvs policy's configuration for a service: its
// scheduler (the default when unset), scheduler options, and ClientIP
// session affinity as persistence on the client's own identity. The
// resolver hands it to Go clients in the service config; the xDS server
// in the Cluster's policy list.
func PolicyConfig(svc *svcregv1.Service) ipvsbalancer.Config {
	cfg := ipvsbalancer.Config{Scheduler: svc.GetScheduler()}
	if cfg.Scheduler == "" {
		cfg.Scheduler = ipvs.DefaultScheduler
	}
	o := svc.GetSchedulerOptions()
	cfg.HashKey, cfg.SecondaryKey, cfg.Fallback = o.GetHashKey(), o.GetSecondaryKey(), o.GetFallback()
	persist := time.Duration(o.GetPersistenceTimeoutSeconds()) * time.Second
	if persist == 0 && svc.GetSessionAffinity() == svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP {
		// Kubernetes' ClientIP affinity: the client's own identity is the key.
		persist = time.Duration(svc.GetSessionAffinityTimeoutSeconds()) * time.Second
	}
	cfg.PersistenceTimeout = ipvsbalancer.Duration(persist)
	return cfg
}

// endpointsFor turns a view into resolver endpoints for the target's port:
// one per ready or terminating-but-serving endpoint, in canonical
// (address) order, with the scheduling attributes the ipvs policy reads.
func endpointsFor(t Target, view endpointwatch.View) ([]resolver.Endpoint, error) {
	svc := view.Service
	port, err := servicePort(t, svc)
	if err != nil {
		return nil, err
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
	var out []resolver.Endpoint
	for _, ep := range view.Endpoints {
		usable := ep.GetReady() || ep.GetServing() && ep.GetTerminating()
		if !usable {
			continue // not ready: left out
		}
		n, ok := endpointPort(ep, port)
		if !ok {
			continue // this instance lacks the named target port
		}
		e := resolver.Endpoint{Addresses: []resolver.Address{{Addr: net.JoinHostPort(ep.GetIp(), strconv.Itoa(int(n)))}}}
		out = append(out, ipvsbalancer.SetEndpointInfo(e, ipvsbalancer.EndpointInfo{
			Weight:         ep.GetWeight(),
			UpperThreshold: ep.GetUpperThreshold(),
			LowerThreshold: ep.GetLowerThreshold(),
			Terminating:    !ep.GetReady(),
			Zone:           ep.GetZone(),
			Node:           ep.GetNode(),
			Hostname:       ep.GetHostname(),
		}))
	}
	slices.SortFunc(out, func(a, b resolver.Endpoint) int { return strings.Compare(a.Addresses[0].Addr, b.Addresses[0].Addr) })
	return out, nil
}

// servicePort finds the target's port among the service's.
func servicePort(t Target, svc *svcregv1.Service) (*svcregv1.ServicePort, error) {
	ports := svc.GetPorts()
	for _, p := range ports {
		switch {
		case t.PortName != "" && p.GetName() == t.PortName:
			return p, nil
		case t.Port != 0 && p.GetPort() == t.Port:
			return p, nil
		}
	}
	switch {
	case t.PortName == "" && t.Port == 0 && len(ports) == 1:
		return ports[0], nil
	case t.PortName == "" && t.Port == 0 && len(ports) == 0 && svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME:
		return nil, nil
	case t.PortName == "" && t.Port == 0:
		names := make([]string, len(ports))
		for i, p := range ports {
			names[i] = p.GetName()
		}
		return nil, fmt.Errorf("svcreg: service %s.%s has %d ports %v: name one in the target, as svcreg:///%s.%s:<port>", t.Service, t.Namespace, len(ports), names, t.Service, t.Namespace)
	case t.Port != 0 && svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME:
		return nil, nil
	}
	want := t.PortName
	if want == "" {
		want = strconv.Itoa(int(t.Port))
	}
	return nil, fmt.Errorf("svcreg: service %s.%s has no port %s", t.Service, t.Namespace, want)
}

// endpointPort is the endpoint's number for a service port.
func endpointPort(ep *svcregv1.Endpoint, sp *svcregv1.ServicePort) (int32, bool) {
	for _, p := range ep.GetPorts() {
		if p.GetName() == sp.GetName() {
			return p.GetPort(), true
		}
	}
	return 0, false
}
