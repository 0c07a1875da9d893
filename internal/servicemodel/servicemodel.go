// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package servicemodel is the one home of the rules that say, for a
// service and its endpoints, where traffic goes: which ports it serves
// (frontends), which endpoints take traffic on each and in what state
// (backends: KEP-1669's ready, serving and terminating, weights,
// topology), and under which policy (the scheduler engine's
// configuration, session affinity and its default). The resolver, the
// xDS server, the node agent, DNS, the console and the web view are its
// consumers: each turns these answers into its own form, and none
// re-derives them. docs/architecture.md, "Which package owns which
// rule", lists them.
//
// It imports no gRPC package: it sits below every consumer.
package servicemodel

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/spelling"
)

// DefaultAffinityTimeout is ClientIP session affinity's timeout when the
// service names none: Kubernetes' sessionAffinityConfig.clientIP
// timeoutSeconds default (10800).
const DefaultAffinityTimeout = 3 * time.Hour

// Policy is the scheduler engine's configuration for a service: its
// scheduler (ipvsadm's default when it names none), its scheduler options,
// and ClientIP session affinity as persistence on the client's identity
// with the service's timeout (DefaultAffinityTimeout when unset); a
// scheduler's own persistence timeout wins. Every consumer schedules with
// this: the ipvs gRPC policy through the resolver's service config and
// xDS, the node agent per connection.
func Policy(svc *svcregv1.Service) ipvs.Config {
	cfg := ipvs.Config{Scheduler: svc.GetScheduler()}
	if cfg.Scheduler == "" {
		cfg.Scheduler = ipvs.DefaultScheduler
	}
	o := svc.GetSchedulerOptions()
	cfg.HashKey, cfg.SecondaryKey, cfg.Fallback = o.GetHashKey(), o.GetSecondaryKey(), o.GetFallback()
	cfg.PersistenceTimeout = ipvs.Duration(AffinityTimeout(svc))
	cfg.OutlierDetection = Outliers(svc)
	return cfg
}

// Outliers is a service's outlier detection (gRFC A50) in the engine's
// terms, nil when it asks for none. Zero fields are A50's defaults.
func Outliers(svc *svcregv1.Service) *ipvs.OutlierDetection {
	od := svc.GetOutlierDetection()
	if od == nil {
		return nil
	}
	secs := func(s int32) ipvs.Duration { return ipvs.Duration(time.Duration(s) * time.Second) }
	out := &ipvs.OutlierDetection{Interval: secs(od.GetIntervalSeconds()), BaseEjectionTime: secs(od.GetBaseEjectionTimeSeconds()),
		MaxEjectionTime: secs(od.GetMaxEjectionTimeSeconds()), MaxEjectionPercent: od.GetMaxEjectionPercent()}
	if sr := od.GetSuccessRateEjection(); sr != nil {
		out.SuccessRate = &ipvs.SuccessRateEjection{StdevFactor: sr.GetStdevFactor(), EnforcementPercentage: sr.GetEnforcementPercentage(),
			MinimumHosts: sr.GetMinimumHosts(), RequestVolume: sr.GetRequestVolume()}
	}
	if fp := od.GetFailurePercentageEjection(); fp != nil {
		out.FailurePercentage = &ipvs.FailurePercentageEjection{Threshold: fp.GetThreshold(), EnforcementPercentage: fp.GetEnforcementPercentage(),
			MinimumHosts: fp.GetMinimumHosts(), RequestVolume: fp.GetRequestVolume()}
	}
	return out
}

// AffinityTimeout is how long a client stays with its backend: the
// scheduler options' persistence timeout, else ClientIP session
// affinity's timeout (DefaultAffinityTimeout when unset), else 0.
func AffinityTimeout(svc *svcregv1.Service) time.Duration {
	if p := svc.GetSchedulerOptions().GetPersistenceTimeoutSeconds(); p > 0 {
		return time.Duration(p) * time.Second
	}
	if svc.GetSessionAffinity() != svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP {
		return 0
	}
	if t := svc.GetSessionAffinityTimeoutSeconds(); t > 0 {
		return time.Duration(t) * time.Second
	}
	return DefaultAffinityTimeout
}

// Proxied reports whether a service has a virtual address that a data
// plane serves: a cluster IP (not headless, not an ExternalName alias).
func Proxied(svc *svcregv1.Service) bool {
	ip := svc.GetClusterIp()
	return ip != "" && ip != meta.ClusterIPNone && svc.GetType() != svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME
}

// Headless reports whether a service has no cluster IP on purpose: DNS
// answers it with its endpoints' addresses.
func Headless(svc *svcregv1.Service) bool { return svc.GetClusterIp() == meta.ClusterIPNone }

// Frontend is one address a service port is served on.
type Frontend struct {
	Port *svcregv1.ServicePort
	// Protocol is tcp, udp or sctp.
	Protocol string
	// Addr is host:port: the cluster IP and the port, or the node address
	// and the node port.
	Addr     string
	NodePort bool
}

// Frontends are the addresses a proxied service's ports are served on:
// each port on the cluster IP, and, for a port with a node port, on
// nodeAddr too (empty: no node ports).
func Frontends(svc *svcregv1.Service, nodeAddr string) []Frontend {
	if !Proxied(svc) {
		return nil
	}
	var out []Frontend
	for _, sp := range svc.GetPorts() {
		proto := spelling.Protocol(sp.GetProtocol())
		out = append(out, Frontend{Port: sp, Protocol: proto, Addr: net.JoinHostPort(svc.GetClusterIp(), strconv.Itoa(int(sp.GetPort())))})
		if np := sp.GetNodePort(); np != 0 && nodeAddr != "" {
			out = append(out, Frontend{Port: sp, Protocol: proto, Addr: net.JoinHostPort(nodeAddr, strconv.Itoa(int(np))), NodePort: true})
		}
	}
	return out
}

// PortLabel names a service port for people: its name, else its number.
func PortLabel(sp *svcregv1.ServicePort) string {
	if sp.GetName() != "" {
		return sp.GetName()
	}
	return strconv.Itoa(int(sp.GetPort()))
}

// FindPort finds a service port by name or number (exactly one may be
// given; neither picks the only port). An ExternalName service may have
// none, which is not an error: nil.
func FindPort(svc *svcregv1.Service, name string, number int32) (*svcregv1.ServicePort, error) {
	ports := svc.GetPorts()
	for _, p := range ports {
		if name != "" && p.GetName() == name || number != 0 && p.GetPort() == number {
			return p, nil
		}
	}
	external := svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME
	switch {
	case name == "" && number == 0 && len(ports) == 1:
		return ports[0], nil
	case external && name == "" && (number != 0 || len(ports) == 0):
		return nil, nil
	case name == "" && number == 0:
		names := make([]string, len(ports))
		for i, p := range ports {
			names[i] = PortLabel(p)
		}
		return nil, fmt.Errorf("service %s.%s has %d ports %v: name one", svc.GetName(), svc.GetNamespace(), len(ports), names)
	}
	want := name
	if want == "" {
		want = strconv.Itoa(int(number))
	}
	return nil, fmt.Errorf("service %s.%s has no port %s", svc.GetName(), svc.GetNamespace(), want)
}

// EndpointPort is an endpoint's port for a service port: derived
// endpoints name their ports after the service's (a named target port
// already resolved per instance), so one an instance lacks is absent.
func EndpointPort(ep *svcregv1.Endpoint, sp *svcregv1.ServicePort) (int32, bool) {
	for _, p := range ep.GetPorts() {
		if p.GetName() == sp.GetName() {
			return p.GetPort(), true
		}
	}
	return 0, false
}

// InstanceServing is whether an instance can serve, the source of its
// endpoints' serving condition: it says it is ready and, when it has a
// readiness probe, the probe passes (docs/health.md).
func InstanceServing(inst *svcregv1.Instance) bool {
	return inst.GetReady() && (inst.GetReadinessProbe() == nil || inst.GetProbeStatus().GetReady())
}

// TakesTraffic reports whether an endpoint takes traffic at all
// (KEP-1669): ready, or terminating but still serving, which is used only
// when no ready endpoint can take a request.
func TakesTraffic(ep *svcregv1.Endpoint) bool {
	return ep.GetReady() || ep.GetServing() && ep.GetTerminating()
}

// Published reports whether DNS names an endpoint's address: ready only,
// as kube-dns publishes an Endpoints object's addresses and never its
// notReadyAddresses (a service with publishNotReadyAddresses has every
// endpoint ready: the store applies that rule when it derives them).
func Published(ep *svcregv1.Endpoint) bool { return ep.GetReady() }

// Backend is one endpoint as a service port's traffic sees it.
type Backend struct {
	Endpoint *svcregv1.Endpoint
	Port     int32
	Addr     string // ip:port
	// Info is what the schedulers read: weight, thresholds, Terminating
	// (a serving endpoint that is not ready: the last resort), topology.
	Info ipvs.EndpointInfo
}

// Backends are the endpoints that take traffic for a service port, in
// canonical (address) order: every one that TakesTraffic and has the
// port. The scheduler engine takes terminating ones only when no ready
// one can take a request; Active says which take new traffic now.
func Backends(eps []*svcregv1.Endpoint, sp *svcregv1.ServicePort) []Backend {
	var out []Backend
	for _, ep := range eps {
		if !TakesTraffic(ep) {
			continue
		}
		port, ok := EndpointPort(ep, sp)
		if !ok {
			continue
		}
		out = append(out, Backend{Endpoint: ep, Port: port, Addr: net.JoinHostPort(ep.GetIp(), strconv.Itoa(int(port))),
			Info: ipvs.EndpointInfo{Weight: ep.GetWeight(), UpperThreshold: ep.GetUpperThreshold(), LowerThreshold: ep.GetLowerThreshold(),
				Terminating: !ep.GetReady(), Zone: ep.GetZone(), Node: ep.GetNode(), Hostname: ep.GetHostname()}})
	}
	slices.SortFunc(out, func(a, b Backend) int { return cmp.Compare(a.Addr, b.Addr) })
	return out
}

// Active reports whether a backend takes new traffic when nothing is
// overloaded (KEP-1669): one with a weight (0 quiesces it) that is ready,
// or, when no ready backend has a weight, that is terminating but serving.
// Consumers that cannot run the engine (xDS, whose clients schedule by
// health status) publish this.
func Active(bs []Backend, b Backend) bool {
	if b.Info.Weight == 0 {
		return false
	}
	if !b.Info.Terminating {
		return true
	}
	for _, o := range bs {
		if !o.Info.Terminating && o.Info.Weight > 0 {
			return false
		}
	}
	return true
}
