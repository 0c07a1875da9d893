package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svcreg/svcreg/balancer"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/ipvs"
)

// frontKey is an address the data plane serves: a cluster IP's port, or
// a node port on the bind address.
type frontKey struct {
	proto string // "tcp" or "udp"
	addr  string // host:port
}

func (k frontKey) String() string { return k.proto + "/" + k.addr }

// frontend is what one address forwards to.
type frontend struct {
	key      frontKey
	service  string // namespace/name, for logs
	port     string // the service port's name, or its number
	nodePort bool
	config   *balancer.Config
	backends []balancer.ConnBackend // canonical (address) order
}

// plan computes every frontend the services call for: each port of each
// proxied service on its cluster IP, and on the bind address when it has
// a node port. Ports of a protocol the data plane cannot serve (SCTP) are
// left out and reported.
func plan(views map[string]endpointwatch.View, bindAddr string) (map[frontKey]*frontend, []error) {
	out := map[frontKey]*frontend{}
	var errs []error
	for key, v := range views {
		svc := v.Service
		if svc == nil || !proxied(svc) {
			continue
		}
		cfg, err := connConfig(svc)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", key, err))
			continue
		}
		for _, sp := range svc.GetPorts() {
			proto, ok := protocolOf(sp.GetProtocol())
			if !ok {
				errs = append(errs, fmt.Errorf("service %s port %d: protocol %v is not proxied (TCP and UDP are)", key, sp.GetPort(), sp.GetProtocol()))
				continue
			}
			f := frontend{service: key, port: portLabel(sp), config: cfg, backends: backendsFor(v, sp)}
			front := f
			front.key = frontKey{proto, net.JoinHostPort(svc.GetClusterIp(), strconv.Itoa(int(sp.GetPort())))}
			out[front.key] = &front
			if np := sp.GetNodePort(); np != 0 && bindAddr != "" {
				node := f
				node.nodePort, node.key = true, frontKey{proto, net.JoinHostPort(bindAddr, strconv.Itoa(int(np)))}
				out[node.key] = &node
			}
		}
	}
	return out, errs
}

func protocolOf(p svcregv1.Protocol) (string, bool) {
	switch p {
	case svcregv1.Protocol_PROTOCOL_UNSPECIFIED, svcregv1.Protocol_PROTOCOL_TCP:
		return "tcp", true
	case svcregv1.Protocol_PROTOCOL_UDP:
		return "udp", true
	}
	return "", false
}

func portLabel(sp *svcregv1.ServicePort) string {
	if sp.GetName() != "" {
		return sp.GetName()
	}
	return strconv.Itoa(int(sp.GetPort()))
}

// backendsFor lists the endpoints that take new connections for a service
// port: ready ones, and terminating ones that still serve (used only when
// no ready one can take it: KEP-1669), at the port named as the service
// port.
func backendsFor(v endpointwatch.View, sp *svcregv1.ServicePort) []balancer.ConnBackend {
	var out []balancer.ConnBackend
	for _, ep := range v.Endpoints {
		if !ep.GetReady() && !(ep.GetServing() && ep.GetTerminating()) {
			continue
		}
		for _, p := range ep.GetPorts() {
			if p.GetName() != sp.GetName() {
				continue
			}
			out = append(out, balancer.ConnBackend{Addr: net.JoinHostPort(ep.GetIp(), strconv.Itoa(int(p.GetPort()))),
				Info: balancer.EndpointInfo{Weight: ep.GetWeight(), UpperThreshold: ep.GetUpperThreshold(),
					LowerThreshold: ep.GetLowerThreshold(), Terminating: !ep.GetReady()}})
			break
		}
	}
	slices.SortFunc(out, func(a, b balancer.ConnBackend) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// connConfig is the scheduler configuration of a service, as the resolver
// gives it to gRPC clients, keyed on the client address instead of a
// header: its scheduler, fallback, and persistence (scheduler options,
// else ClientIP session affinity's timeout).
func connConfig(svc *svcregv1.Service) (*balancer.Config, error) {
	sched := svc.GetScheduler()
	if sched == "" {
		sched = ipvs.DefaultScheduler
	}
	o := svc.GetSchedulerOptions()
	persist := time.Duration(o.GetPersistenceTimeoutSeconds()) * time.Second
	if persist == 0 && svc.GetSessionAffinity() == svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP {
		persist = time.Duration(svc.GetSessionAffinityTimeoutSeconds()) * time.Second
		if persist == 0 {
			persist = 3 * time.Hour // Kubernetes' default timeoutSeconds
		}
	}
	js, err := json.Marshal(balancer.Config{Scheduler: sched, Fallback: o.GetFallback(), PersistenceTimeout: balancer.Duration(persist)})
	if err != nil {
		return nil, err
	}
	return balancer.ParseConfig(js)
}

// sameBackends reports whether two frontends forward alike (an update
// that changes nothing is skipped).
func sameBackends(a, b *frontend) bool {
	return slices.Equal(a.backends, b.backends) && *a.config == *b.config
}
