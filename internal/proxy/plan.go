// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/servicemodel"
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
	config   *ipvs.Config
	backends []servicemodel.Backend // canonical (address) order
}

// engineBackends are a frontend's backends as the scheduler engine takes
// them.
func engineBackends(bs []servicemodel.Backend) []ipvs.Backend {
	out := make([]ipvs.Backend, len(bs))
	for i, b := range bs {
		out[i] = ipvs.Backend{Addr: b.Addr, Info: b.Info}
	}
	return out
}

// plan computes every frontend the services call for: the service model's
// frontends (each port of each proxied service on its cluster IP, and on
// the bind address when it has a node port), each with the model's
// backends (routed by the service's topology for this node, loc) and
// policy. Ports of a protocol the data plane cannot serve (SCTP) are left
// out and reported.
func plan(views map[string]endpointwatch.View, bindAddr string, loc servicemodel.Locality) (map[frontKey]*frontend, []error) {
	out := map[frontKey]*frontend{}
	var errs []error
	for key, v := range views {
		svc := v.Service
		if svc == nil {
			continue
		}
		cfg, err := ipvs.Complete(servicemodel.Policy(svc))
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", key, err))
			continue
		}
		eps := v.List()
		for _, f := range servicemodel.Frontends(svc, bindAddr) {
			if f.Protocol != "tcp" && f.Protocol != "udp" {
				if !f.NodePort {
					errs = append(errs, fmt.Errorf("service %s port %d: protocol %s is not proxied (TCP and UDP are)", key, f.Port.GetPort(), strings.ToUpper(f.Protocol)))
				}
				continue
			}
			k := frontKey{f.Protocol, f.Addr}
			backends, _ := servicemodel.Route(svc, servicemodel.Backends(eps, f.Port), loc)
			out[k] = &frontend{key: k, service: key, port: servicemodel.PortLabel(f.Port), nodePort: f.NodePort, config: cfg,
				backends: backends}
		}
	}
	return out, errs
}

// sameBackends reports whether two frontends forward alike (an update
// that changes nothing is skipped).
func sameBackends(a, b *frontend) bool {
	return slices.EqualFunc(a.backends, b.backends, func(x, y servicemodel.Backend) bool { return x.Addr == y.Addr && x.Info == y.Info }) &&
		a.config.Equal(b.config)
}
