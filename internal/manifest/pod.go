// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"fmt"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// kubePod maps a v1 Pod (as `kubectl get pod -o yaml` prints it) to the
// instance that registers it: its name, namespace and labels, its
// address (status.podIP), node, hostname and subdomain, its containers'
// ports, and the readinessProbe of its pod template, which svcreg then
// runs itself (docs/health.md). The pod's status conditions are a
// snapshot of what the kubelet saw and are not copied: the probe decides.
func kubePod(source string, m map[string]any) (Object, error) {
	f, r := newDocument(m)
	inst := &svcregv1.Instance{}
	var annotations map[string]string
	inst.Name, inst.Namespace, inst.Labels, annotations = objectMeta(&f)
	ignoreMetadata(r, nil, annotations, "")
	spec, _ := f.child("spec")
	inst.Node, inst.Hostname, inst.Subdomain = spec.str("nodeName"), spec.str("hostname"), spec.str("subdomain")
	probeFrom := ""
	for _, c := range spec.list("containers") {
		for _, p := range c.list("ports") {
			port := &svcregv1.InstancePort{Name: p.str("name")}
			port.Port, _ = p.integer("containerPort")
			proto, _ := enum(&p, "protocol", kubeProtocols)
			port.Protocol = svcregv1.Protocol(proto)
			p.ignore("hostPort", "svcreg reaches the pod at its own address")
			p.ignore("hostIP", "")
			p.done()
			inst.Ports = append(inst.Ports, port)
		}
		if probe, ok := c.child("readinessProbe"); ok {
			if probeFrom != "" && r.err == nil {
				r.err = fmt.Errorf("%s: an instance has one readiness probe and %s has one already", probe.path, probeFrom)
			}
			probeFrom = probe.path
			inst.ReadinessProbe = kubeProbe(&probe)
		}
		c.done()
	}
	spec.done()
	status, _ := f.child("status")
	inst.Ip = status.str("podIP")
	if inst.Ip == "" && r.err == nil {
		r.err = fmt.Errorf("status.podIP: required: an instance is registered at its address (a running pod's `kubectl get pod -o yaml` has it)")
	}
	if ips := status.list("podIPs"); len(ips) > 1 {
		status.r.ignored = append(status.r.ignored, status.at("podIPs")+"[1:] (an instance has one address)")
	}
	status.ignore("conditions", "svcreg's own run of the readiness probe decides")
	status.done()
	f.done()
	return finish(Object{Source: source, Instance: inst}, "Pod", r)
}

// kubeProbe maps a container's readinessProbe (a core/v1 Probe). An exec
// probe runs inside the container, where svcreg cannot: it is an error,
// not a probe silently dropped.
func kubeProbe(f *fields) *svcregv1.Probe {
	p := &svcregv1.Probe{}
	if g, ok := f.child("grpc"); ok {
		h := &svcregv1.GRPCProbe{Service: g.str("service")}
		h.Port, _ = g.integer("port")
		g.done()
		p.Handler = &svcregv1.Probe_Grpc{Grpc: h}
	}
	if g, ok := f.child("httpGet"); ok {
		h := &svcregv1.HTTPGetProbe{Path: g.str("path"), Port: g.intOrString("port"), Scheme: g.str("scheme")}
		for _, hd := range g.list("httpHeaders") {
			h.HttpHeaders = append(h.HttpHeaders, &svcregv1.HTTPHeader{Name: hd.str("name"), Value: hd.str("value")})
			hd.done()
		}
		g.ignore("host", "svcreg probes the instance's address")
		g.done()
		p.Handler = &svcregv1.Probe_HttpGet{HttpGet: h}
	}
	if g, ok := f.child("tcpSocket"); ok {
		p.Handler = &svcregv1.Probe_TcpSocket{TcpSocket: &svcregv1.TCPSocketProbe{Port: g.intOrString("port")}}
		g.ignore("host", "svcreg probes the instance's address")
		g.done()
	}
	if _, ok := f.take("exec"); ok && f.r.err == nil {
		f.r.err = fmt.Errorf("%s: an exec probe runs inside the container, which svcreg cannot do: use grpc, httpGet or tcpSocket", f.at("exec"))
	}
	p.InitialDelaySeconds, _ = f.integer("initialDelaySeconds")
	p.PeriodSeconds, _ = f.integer("periodSeconds")
	p.TimeoutSeconds, _ = f.integer("timeoutSeconds")
	p.SuccessThreshold, _ = f.integer("successThreshold")
	p.FailureThreshold, _ = f.integer("failureThreshold")
	f.ignore("terminationGracePeriodSeconds", "it applies to liveness probes")
	f.done()
	return p
}
