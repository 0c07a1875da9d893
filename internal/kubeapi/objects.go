// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

//lint:file-ignore SA1019 v1 Endpoints, deprecated in Kubernetes 1.33, is served on purpose: kube-proxy's and CoreDNS's older releases and many tools still read it

package kubeapi

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/servicemodel"
	"github.com/svcreg/svcreg/internal/spelling"
)

// Labels and annotations Kubernetes' controllers put on the objects they
// derive, which its clients select on.
const (
	// LabelServiceName names an EndpointSlice's service (KEP-752).
	LabelServiceName = discoveryv1.LabelServiceName
	// LabelManagedBy names the controller of an EndpointSlice.
	LabelManagedBy = discoveryv1.LabelManagedBy
	// ManagedBy is svcreg's value of LabelManagedBy.
	ManagedBy = "svcreg.io"
	// LabelHeadless marks the Endpoints and EndpointSlices of a headless
	// service; kube-proxy's watch leaves them out.
	LabelHeadless = corev1.IsHeadlessService
	// AnnotationOverCapacity marks an Endpoints object cut at
	// MaxEndpointsAddresses.
	AnnotationOverCapacity = corev1.EndpointsOverCapacity
)

// The endpoints controller's and the EndpointSlice controller's limits.
const (
	// MaxEndpointsAddresses is where an Endpoints object is truncated
	// (kubernetes/pkg/controller/endpoint: maxCapacity).
	MaxEndpointsAddresses = 1000
	// MaxSliceEndpoints is the EndpointSlice controller's default
	// --max-endpoints-per-slice.
	MaxSliceEndpoints = 100
)

// objectMeta is a svcreg object's metadata as Kubernetes says it: the
// registry revision is the resourceVersion.
func objectMeta(ns, name, uid string, rev int64, labels, annotations map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), ResourceVersion: strconv.FormatInt(rev, 10),
		Labels: labels, Annotations: annotations}
}

// derivedMeta is the metadata of an object derived from a service: born
// with it.
func derivedMeta(svc *svcregv1.Service, name string, rev int64, labels, annotations map[string]string) metav1.ObjectMeta {
	m := objectMeta(svc.GetNamespace(), name, "", rev, labels, annotations)
	if t := svc.GetCreateTime(); t != nil {
		m.CreationTimestamp = metav1.NewTime(t.AsTime())
	}
	return m
}

// Service is a svcreg service as a v1 Service.
func Service(svc *svcregv1.Service) *corev1.Service {
	out := &corev1.Service{ObjectMeta: derivedMeta(svc, svc.GetName(), svc.GetResourceVersion(), svc.GetLabels(), svc.GetAnnotations())}
	out.UID = types.UID(svc.GetUid())
	spec := &out.Spec
	spec.Type = corev1.ServiceTypeClusterIP
	if svc.GetType() != svcregv1.ServiceType_SERVICE_TYPE_UNSPECIFIED {
		spec.Type = corev1.ServiceType(spelling.Of(svc.GetType()))
	}
	spec.Selector = svc.GetSelector()
	if spec.Type != corev1.ServiceTypeExternalName {
		spec.ClusterIP = svc.GetClusterIp()
		if ip := svc.GetClusterIp(); ip != "" {
			spec.ClusterIPs = []string{ip}
		}
		spec.IPFamilies = []corev1.IPFamily{family(svc.GetClusterIp())}
		single := corev1.IPFamilyPolicySingleStack
		spec.IPFamilyPolicy = &single
		spec.SessionAffinity = corev1.ServiceAffinityNone
		if svc.GetSessionAffinity() == svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP {
			spec.SessionAffinity = corev1.ServiceAffinityClientIP
			timeout := int32(servicemodel.AffinityTimeout(svc).Seconds())
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
		}
		itp := corev1.ServiceInternalTrafficPolicyCluster
		if svc.GetInternalTrafficPolicy() == svcregv1.InternalTrafficPolicy_INTERNAL_TRAFFIC_POLICY_LOCAL {
			itp = corev1.ServiceInternalTrafficPolicyLocal
		}
		spec.InternalTrafficPolicy = &itp
	}
	if spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	spec.ExternalName = svc.GetExternalName()
	spec.PublishNotReadyAddresses = svc.GetPublishNotReadyAddresses()
	if td := svc.GetTrafficDistribution(); td != svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_UNSPECIFIED {
		s := spelling.Of(td)
		spec.TrafficDistribution = &s
	}
	for _, p := range svc.GetPorts() {
		spec.Ports = append(spec.Ports, corev1.ServicePort{Name: p.GetName(), Protocol: protocol(p.GetProtocol()), Port: p.GetPort(),
			TargetPort: targetPort(p), NodePort: p.GetNodePort(), AppProtocol: optional(p.GetAppProtocol())})
	}
	return out
}

// targetPort is a service port's IntOrString: empty means the port's own
// number, as Kubernetes defaults it.
func targetPort(p *svcregv1.ServicePort) intstr.IntOrString {
	t := p.GetTargetPort()
	if t == "" {
		return intstr.FromInt32(p.GetPort())
	}
	if n, err := strconv.ParseInt(t, 10, 32); err == nil {
		return intstr.FromInt32(int32(n))
	}
	return intstr.FromString(t)
}

func protocol(p svcregv1.Protocol) corev1.Protocol {
	return corev1.Protocol(strings.ToUpper(spelling.Protocol(p)))
}

func family(ip string) corev1.IPFamily {
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// HasEndpoints reports whether Kubernetes would keep Endpoints and
// EndpointSlices for the service: its controllers manage those of services
// with a selector; a selectorless service has the ones written for it, and
// an ExternalName service none.
func HasEndpoints(svc *svcregv1.Service, eps []*svcregv1.Endpoint) bool {
	if svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME {
		return false
	}
	return len(svc.GetSelector()) > 0 || len(eps) > 0
}

// derivedLabels are the labels of a service's Endpoints and EndpointSlices:
// the service's own, and the headless mark.
func derivedLabels(svc *svcregv1.Service, extra int) map[string]string {
	labels := make(map[string]string, len(svc.GetLabels())+extra+1)
	for k, v := range svc.GetLabels() {
		labels[k] = v
	}
	if servicemodel.Headless(svc) {
		labels[LabelHeadless] = ""
	} else {
		delete(labels, LabelHeadless)
	}
	return labels
}

// revisionOf is a derived object's resourceVersion: the newest revision
// among the service and the endpoints it shows (or at, when newer: the
// revision the object last changed at, a removal included).
func revisionOf(svc *svcregv1.Service, eps []*svcregv1.Endpoint, at int64) int64 {
	rev := max(svc.GetResourceVersion(), at)
	for _, ep := range eps {
		rev = max(rev, ep.GetResourceVersion())
	}
	return rev
}

// Endpoints is a service's v1 Endpoints as the endpoints controller builds
// them (addEndpointSubset): a ready endpoint (ready already says
// publishNotReadyAddresses) is an address, a not-ready one a not-ready
// address, a terminating one that is not ready is left out; endpoints with
// the same ports share a subset; past MaxEndpointsAddresses the object is
// cut, ready addresses first, and annotated. at is the revision it last
// changed at (0: the newest of its parts).
func Endpoints(svc *svcregv1.Service, eps []*svcregv1.Endpoint, at int64) *corev1.Endpoints {
	out := &corev1.Endpoints{ObjectMeta: derivedMeta(svc, svc.GetName(), revisionOf(svc, eps, at), derivedLabels(svc, 0), nil)}
	type subset struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	bySet := map[string]*subset{}
	var keys []string
	total, kept := 0, 0
	for _, ep := range eps {
		if !ep.GetReady() && ep.GetTerminating() {
			continue
		}
		key := portsKey(ep.GetPorts())
		s, ok := bySet[key]
		if !ok {
			s = &subset{}
			for _, p := range ep.GetPorts() {
				s.ports = append(s.ports, corev1.EndpointPort{Name: p.GetName(), Port: p.GetPort(), Protocol: protocol(p.GetProtocol()),
					AppProtocol: optional(p.GetAppProtocol())})
			}
			bySet[key] = s
			keys = append(keys, key)
		}
		addr := corev1.EndpointAddress{IP: ep.GetIp(), Hostname: ep.GetHostname(), NodeName: optional(ep.GetNode()), TargetRef: targetRef(svc, ep)}
		if ep.GetReady() {
			s.ready = append(s.ready, addr)
		} else {
			s.notReady = append(s.notReady, addr)
		}
		total++
	}
	slices.Sort(keys)
	budget := MaxEndpointsAddresses
	for _, pass := range []bool{true, false} { // ready addresses first
		for _, k := range keys {
			s := bySet[k]
			list := &s.ready
			if !pass {
				list = &s.notReady
			}
			if len(*list) > budget {
				*list = (*list)[:budget]
			}
			budget -= len(*list)
			kept += len(*list)
		}
	}
	for _, k := range keys {
		s := bySet[k]
		if len(s.ready) == 0 && len(s.notReady) == 0 {
			continue
		}
		sortAddresses(s.ready)
		sortAddresses(s.notReady)
		out.Subsets = append(out.Subsets, corev1.EndpointSubset{Addresses: s.ready, NotReadyAddresses: s.notReady, Ports: s.ports})
	}
	if kept < total {
		out.Annotations = map[string]string{AnnotationOverCapacity: "truncated"}
	}
	return out
}

func sortAddresses(as []corev1.EndpointAddress) {
	slices.SortFunc(as, func(a, b corev1.EndpointAddress) int {
		return cmp.Or(cmp.Compare(a.IP, b.IP), cmp.Compare(a.Hostname, b.Hostname))
	})
}

// targetRef names the instance behind a derived endpoint; an endpoint
// written by hand has none.
func targetRef(svc *svcregv1.Service, ep *svcregv1.Endpoint) *corev1.ObjectReference {
	if len(svc.GetSelector()) == 0 {
		return nil
	}
	return &corev1.ObjectReference{Kind: "Pod", Namespace: ep.GetNamespace(), Name: ep.GetInstance()}
}

// portsKey identifies an endpoint's resolved port set.
func portsKey(ports []*svcregv1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ports {
		b.WriteString(p.GetName())
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(int(p.GetPort())))
		b.WriteByte('/')
		b.WriteString(p.GetProtocol().String())
		b.WriteByte('/')
		b.WriteString(p.GetAppProtocol())
		b.WriteByte(',')
	}
	return b.String()
}

// EndpointSlices are a service's discovery.k8s.io/v1 EndpointSlices
// (KEP-752): one group per address family and resolved port set, in
// slices of at most MaxSliceEndpoints, ordered by instance; every endpoint
// is in one, with its ready, serving and terminating conditions (KEP-1672),
// zone, node and, under a trafficDistribution, the hints the EndpointSlice
// controller gives (KEP-4444, KEP-3015). A service with a selector and no
// endpoints has one empty slice, as the controller keeps. Slice names are
// stable: the service and the slice's index ("web-0"; no service's name
// plus "-N" is another's, since a name never ends with '-'), so the
// placeholder becomes the first slice, as the controller reuses it.
func EndpointSlices(svc *svcregv1.Service, eps []*svcregv1.Endpoint, at int64) []*discoveryv1.EndpointSlice {
	type group struct {
		family discoveryv1.AddressType
		ports  []*svcregv1.EndpointPort
		eps    []*svcregv1.Endpoint
	}
	groups := map[string]*group{}
	var keys []string
	for _, ep := range eps {
		fam := discoveryv1.AddressType(family(ep.GetIp()))
		key := string(fam) + "|" + portsKey(ep.GetPorts())
		g, ok := groups[key]
		if !ok {
			g = &group{family: fam, ports: ep.GetPorts()}
			groups[key] = g
			keys = append(keys, key)
		}
		g.eps = append(g.eps, ep)
	}
	if len(keys) == 0 {
		groups[""] = &group{family: discoveryv1.AddressType(family(svc.GetClusterIp()))}
		keys = append(keys, "")
	}
	slices.Sort(keys)
	var out []*discoveryv1.EndpointSlice
	for _, key := range keys {
		g := groups[key]
		slices.SortFunc(g.eps, func(a, b *svcregv1.Endpoint) int { return cmp.Compare(a.GetInstance(), b.GetInstance()) })
		for i := 0; i == 0 || i < len(g.eps); i += MaxSliceEndpoints {
			part := g.eps[i:min(i+MaxSliceEndpoints, len(g.eps))]
			name := svc.GetName() + "-" + strconv.Itoa(len(out))
			out = append(out, endpointSlice(svc, name, g.family, g.ports, part, at))
		}
	}
	return out
}

func endpointSlice(svc *svcregv1.Service, name string, fam discoveryv1.AddressType, ports []*svcregv1.EndpointPort, eps []*svcregv1.Endpoint, at int64) *discoveryv1.EndpointSlice {
	labels := derivedLabels(svc, 2)
	labels[LabelServiceName] = svc.GetName()
	labels[LabelManagedBy] = ManagedBy
	out := &discoveryv1.EndpointSlice{ObjectMeta: derivedMeta(svc, name, revisionOf(svc, eps, at), labels, nil), AddressType: fam}
	if uid := svc.GetUid(); uid != "" {
		yes := true
		out.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.GetName(), UID: types.UID(uid),
			Controller: &yes, BlockOwnerDeletion: &yes}}
	}
	for _, p := range ports {
		name, proto, port := p.GetName(), protocol(p.GetProtocol()), p.GetPort()
		out.Ports = append(out.Ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port, AppProtocol: optional(p.GetAppProtocol())})
	}
	td := svc.GetTrafficDistribution()
	for _, ep := range eps {
		ready, serving, terminating := ep.GetReady(), ep.GetServing(), ep.GetTerminating()
		e := discoveryv1.Endpoint{Addresses: []string{ep.GetIp()}, Hostname: optional(ep.GetHostname()), NodeName: optional(ep.GetNode()),
			Zone: optional(ep.GetZone()), TargetRef: targetRef(svc, ep),
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating}}
		if td != svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_UNSPECIFIED && ep.GetZone() != "" {
			e.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: ep.GetZone()}}}
			if td == svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_PREFER_SAME_NODE && ep.GetNode() != "" {
				e.Hints.ForNodes = []discoveryv1.ForNode{{Name: ep.GetNode()}}
			}
		}
		out.Endpoints = append(out.Endpoints, e)
	}
	return out
}

// Namespace is a svcreg namespace (one that holds a service, or the
// default one) as a v1 Namespace; rev is when it appeared.
func Namespace(name string, rev int64) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: objectMeta("", name, "", rev, map[string]string{corev1.LabelMetadataName: name}, nil),
		Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

// Node is a node of the fleet (one an instance names) as a v1 Node:
// labelled with its hostname and zone, the labels topology reads; rev is
// when it last changed. svcreg knows no more of a node (its addresses and
// conditions are the node's own to report).
func Node(name, zone string, rev int64) *corev1.Node {
	labels := map[string]string{corev1.LabelHostname: name}
	if zone != "" {
		labels[corev1.LabelTopologyZone] = zone
	}
	return &corev1.Node{ObjectMeta: objectMeta("", name, "", rev, labels, nil)}
}
