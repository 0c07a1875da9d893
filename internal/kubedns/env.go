// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubedns

import (
	"strconv"
	"strings"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/spelling"
)

// EnvVar is one variable.
type EnvVar struct{ Name, Value string }

// Environment returns the variables kubelet's envvars.FromServices would
// inject for a namespace's services: {SVC}_SERVICE_HOST, _SERVICE_PORT and
// _SERVICE_PORT_{NAME}, then the Docker links variables {SVC}_PORT and,
// per port, _PORT_{port}_{PROTO} with its _PROTO, _PORT and _ADDR. Names
// are upper case with dashes as underscores. Headless and EXTERNAL_NAME
// services have no cluster IP and are skipped. Services come in name
// order.
func Environment(snap Snapshot, namespace string) ([]EnvVar, error) {
	v := &reads{s: snap}
	var out []EnvVar
	for _, svc := range v.Services(namespace) {
		ip := svc.GetClusterIp()
		if ip == "" || ip == meta.ClusterIPNone || svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME || len(svc.GetPorts()) == 0 {
			continue
		}
		prefix := envName(svc.GetName())
		first := svc.GetPorts()[0]
		out = append(out,
			EnvVar{prefix + "_SERVICE_HOST", ip},
			EnvVar{prefix + "_SERVICE_PORT", strconv.Itoa(int(first.GetPort()))})
		for _, p := range svc.GetPorts() {
			if p.GetName() != "" {
				out = append(out, EnvVar{prefix + "_SERVICE_PORT_" + envName(p.GetName()), strconv.Itoa(int(p.GetPort()))})
			}
		}
		hostPort := func(p *svcregv1.ServicePort) string {
			if strings.Contains(ip, ":") {
				return "[" + ip + "]:" + strconv.Itoa(int(p.GetPort()))
			}
			return ip + ":" + strconv.Itoa(int(p.GetPort()))
		}
		out = append(out, EnvVar{prefix + "_PORT", spelling.Protocol(first.GetProtocol()) + "://" + hostPort(first)})
		for _, p := range svc.GetPorts() {
			proto := spelling.Protocol(p.GetProtocol())
			base := prefix + "_PORT_" + strconv.Itoa(int(p.GetPort())) + "_" + strings.ToUpper(proto)
			out = append(out,
				EnvVar{base, proto + "://" + hostPort(p)},
				EnvVar{base + "_PROTO", proto},
				EnvVar{base + "_PORT", strconv.Itoa(int(p.GetPort()))},
				EnvVar{base + "_ADDR", ip})
		}
	}
	return out, v.err
}

func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }
