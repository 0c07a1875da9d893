// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/spelling"
)

// The enums a Kubernetes manifest spells its own way (internal/spelling
// has the one table).
var (
	kubeServiceTypes = svcregv1.ServiceType(0).Descriptor()
	kubeAffinities   = svcregv1.SessionAffinity(0).Descriptor()
	kubeProtocols    = svcregv1.Protocol(0).Descriptor()
	kubeDistribution = svcregv1.TrafficDistribution(0).Descriptor()
	kubeITP          = svcregv1.InternalTrafficPolicy(0).Descriptor()
)

// lastApplied is kubectl's copy of the Kubernetes object: it describes
// that object, not svcreg's, and is often larger than all the rest.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// serviceNameLabel ties an EndpointSlice to its service (KEP-752).
const serviceNameLabel = "kubernetes.io/service-name"

func enum(f *fields, key string, e protoreflect.EnumDescriptor) (protoreflect.EnumNumber, bool) {
	s := f.str(key)
	if s == "" {
		return 0, false
	}
	values := e.Values()
	for i := range values.Len() {
		if v := values.Get(i); spelling.Kubernetes(v) == s {
			return v.Number(), true
		}
	}
	names, _ := spelling.Accepted(e)
	if f.r.err == nil {
		f.r.err = fmt.Errorf("%s: %q is not one of %s", f.at(key), s, strings.Join(names, ", "))
	}
	return 0, false
}

// objectMeta reads metadata: name, namespace, labels and annotations;
// everything else there is Kubernetes' own bookkeeping.
func objectMeta(f *fields) (name, namespace string, labels, annotations map[string]string) {
	md, _ := f.child("metadata")
	name, namespace = md.str("name"), md.str("namespace")
	labels = md.strMap("labels")
	annotations = md.strMap("annotations")
	if _, ok := annotations[lastApplied]; ok {
		delete(annotations, lastApplied)
		md.r.ignored = append(md.r.ignored, "metadata.annotations["+lastApplied+"] (it describes the Kubernetes object)")
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	md.done()
	return name, namespace, labels, annotations
}

// ignoreMetadata names the labels and annotations of endpoints (which
// svcreg does not keep) but the one that names the service.
func ignoreMetadata(r *report, labels, annotations map[string]string, keep string) {
	var names []string
	for k := range labels {
		if k != keep {
			names = append(names, "metadata.labels["+k+"]")
		}
	}
	for k := range annotations {
		names = append(names, "metadata.annotations["+k+"]")
	}
	sort.Strings(names)
	r.ignored = append(r.ignored, names...)
}

// finish turns a Kubernetes document's report into the object's warnings
// or error, naming the document's kind.
func finish(obj Object, kind string, r *report) (Object, error) {
	if r.err != nil {
		return Object{}, fmt.Errorf("%s: %s: %w", obj.Source, kind, r.err)
	}
	if len(r.ignored) > 0 {
		obj.Warnings = append(obj.Warnings, fmt.Sprintf("%s %s/%s: svcreg ignored %s", kind, obj.Namespace(), obj.Name(), joinFields(r.ignored)))
	}
	return obj, nil
}

// kubeService maps a v1 Service (docs/console.md, "Coming from Kubernetes").
func kubeService(source string, m map[string]any) (Object, error) {
	f, r := newDocument(m)
	svc := &svcregv1.Service{}
	svc.Name, svc.Namespace, svc.Labels, svc.Annotations = objectMeta(&f)
	spec, _ := f.child("spec")
	svc.Selector = spec.strMap("selector")
	svc.ClusterIp = spec.str("clusterIP")
	if ips := spec.strList("clusterIPs"); len(ips) > 1 {
		spec.r.ignored = append(spec.r.ignored, spec.at("clusterIPs")+"[1:] (a svcreg service has one cluster IP)")
	} else if len(ips) == 1 && svc.ClusterIp == "" {
		svc.ClusterIp = ips[0]
	}
	t, _ := enum(&spec, "type", kubeServiceTypes)
	a, _ := enum(&spec, "sessionAffinity", kubeAffinities)
	svc.Type, svc.SessionAffinity = svcregv1.ServiceType(t), svcregv1.SessionAffinity(a)
	if cfg, ok := spec.child("sessionAffinityConfig"); ok {
		if ip, ok := cfg.child("clientIP"); ok {
			if t, ok := ip.integer("timeoutSeconds"); ok {
				svc.SessionAffinityTimeoutSeconds = proto.Int32(t)
			}
			ip.done()
		}
		cfg.done()
	}
	svc.ExternalName = spec.str("externalName")
	svc.PublishNotReadyAddresses, _ = spec.boolean("publishNotReadyAddresses")
	td, _ := enum(&spec, "trafficDistribution", kubeDistribution)
	itp, _ := enum(&spec, "internalTrafficPolicy", kubeITP)
	svc.TrafficDistribution, svc.InternalTrafficPolicy = svcregv1.TrafficDistribution(td), svcregv1.InternalTrafficPolicy(itp)
	for _, p := range spec.list("ports") {
		port := &svcregv1.ServicePort{Name: p.str("name"), TargetPort: p.intOrString("targetPort"), AppProtocol: p.str("appProtocol")}
		proto, _ := enum(&p, "protocol", kubeProtocols)
		port.Protocol = svcregv1.Protocol(proto)
		port.Port, _ = p.integer("port")
		port.NodePort, _ = p.integer("nodePort")
		p.done()
		svc.Ports = append(svc.Ports, port)
	}
	// Fields that describe how Kubernetes' own machinery handles the
	// service, with no svcreg counterpart.
	spec.ignore("ipFamilies", "svcreg picks the family from the cluster IP")
	spec.ignore("ipFamilyPolicy", "svcreg picks the family from the cluster IP")
	spec.done()
	f.ignore("status", "")
	f.done()
	return finish(Object{Source: source, Service: svc}, "Service", r)
}

// kubeEndpoints maps a v1 Endpoints: every address of every subset is an
// endpoint with that subset's ports; notReadyAddresses are not ready.
func kubeEndpoints(source string, m map[string]any) (Object, error) {
	f, r := newDocument(m)
	eps := &Endpoints{}
	var labels, annotations map[string]string
	eps.Service, eps.Namespace, labels, annotations = objectMeta(&f)
	ignoreMetadata(r, labels, annotations, "")
	for _, sub := range f.list("subsets") {
		var ports []*svcregv1.EndpointPort
		for _, p := range sub.list("ports") {
			ports = append(ports, endpointPort(&p))
		}
		for _, list := range []struct {
			key   string
			ready bool
		}{{"addresses", true}, {"notReadyAddresses", false}} {
			for _, a := range sub.list(list.key) {
				ep := &svcregv1.Endpoint{Ip: a.str("ip"), Hostname: a.str("hostname"), Node: a.str("nodeName"),
					Ready: proto.Bool(list.ready), Serving: proto.Bool(list.ready), Ports: ports}
				ep.Instance = instanceName(&a, ep)
				a.done()
				eps.Endpoints = append(eps.Endpoints, ep)
			}
		}
		sub.done()
	}
	f.done()
	return finish(Object{Source: source, Endpoints: eps}, "Endpoints", r)
}

// kubeEndpointSlice maps a discovery.k8s.io/v1 EndpointSlice (KEP-752):
// its conditions are svcreg's (KEP-1672: ready, serving, terminating).
func kubeEndpointSlice(source string, m map[string]any) (Object, error) {
	f, r := newDocument(m)
	eps := &Endpoints{}
	var labels, annotations map[string]string
	_, eps.Namespace, labels, annotations = objectMeta(&f)
	eps.Service = labels[serviceNameLabel]
	ignoreMetadata(r, labels, annotations, serviceNameLabel)
	if eps.Service == "" && r.err == nil {
		r.err = fmt.Errorf("metadata.labels: the label %s names the slice's service, and is required", serviceNameLabel)
	}
	if t := f.str("addressType"); t == "FQDN" && r.err == nil {
		r.err = fmt.Errorf("addressType: FQDN endpoints are not supported (svcreg endpoints are IP addresses; use an ExternalName service)")
	}
	var ports []*svcregv1.EndpointPort
	for _, p := range f.list("ports") {
		ports = append(ports, endpointPort(&p))
	}
	for _, e := range f.list("endpoints") {
		addrs := e.strList("addresses")
		ep := &svcregv1.Endpoint{Hostname: e.str("hostname"), Node: e.str("nodeName"), Zone: e.str("zone"), Ports: ports}
		if len(addrs) > 0 {
			ep.Ip = addrs[0]
		}
		if len(addrs) > 1 {
			e.r.ignored = append(e.r.ignored, e.at("addresses")+"[1:] (an endpoint has one address)")
		}
		conditions(&e, ep)
		ep.Instance = instanceName(&e, ep)
		e.ignore("hints", "svcreg routes by zone through its schedulers")
		e.done()
		eps.Endpoints = append(eps.Endpoints, ep)
	}
	f.done()
	return finish(Object{Source: source, Endpoints: eps}, "EndpointSlice", r)
}

// conditions reads an EndpointSlice endpoint's conditions. An unset ready
// means ready and an unset serving means as ready (KEP-1672).
func conditions(e *fields, ep *svcregv1.Endpoint) {
	c, _ := e.child("conditions")
	ready, set := c.boolean("ready")
	if !set {
		ready = true
	}
	serving, set := c.boolean("serving")
	if !set {
		serving = ready
	}
	ep.Terminating, _ = c.boolean("terminating")
	ep.Ready, ep.Serving = proto.Bool(ready), proto.Bool(serving)
	c.done()
}

func endpointPort(p *fields) *svcregv1.EndpointPort {
	port := &svcregv1.EndpointPort{Name: p.str("name"), AppProtocol: p.str("appProtocol")}
	proto, _ := enum(p, "protocol", kubeProtocols)
	port.Protocol = svcregv1.Protocol(proto)
	port.Port, _ = p.integer("port")
	p.done()
	return port
}

// instanceName names an endpoint: its target Pod's name, else its
// hostname, else its address ("10.0.0.1" is "ip-10-0-0-1").
func instanceName(a *fields, ep *svcregv1.Endpoint) string {
	name := ""
	if ref, ok := a.child("targetRef"); ok {
		name = ref.str("name")
		for _, k := range []string{"kind", "namespace", "uid", "resourceVersion", "apiVersion", "fieldPath"} {
			ref.take(k) // they say which Pod: its name is what svcreg keeps
		}
		ref.done()
	}
	if name == "" {
		name = ep.GetHostname()
	}
	if name == "" {
		if ip, err := netip.ParseAddr(ep.GetIp()); err == nil {
			name = "ip-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip.StringExpanded())
		}
	}
	return name
}
