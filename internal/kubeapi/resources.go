// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

//lint:file-ignore SA1019 v1 Endpoints, deprecated in Kubernetes 1.33, is served on purpose: kube-proxy's and CoreDNS's older releases and many tools still read it

package kubeapi

import (
	"maps"
	"slices"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// resource is one kind of object this API serves: where it lives, how it
// is read out of the cache, listed and selected by field.
type resource struct {
	gvr        schema.GroupVersionResource
	kind       string
	singular   string
	shortNames []string
	namespaced bool
	// each calls fn with every object in the cache, in key order, under
	// its read lock.
	each func(c *Cache, fn func(metav1.Object))
	// list wraps items as the kind's list.
	list func(items []metav1.Object, meta metav1.ListMeta) runtime.Object
	// empty is an object with nothing set, for BOOKMARK events.
	empty func() metav1.Object
	// fields are the fields a fieldSelector may name beside metadata.name
	// and metadata.namespace.
	fields func(metav1.Object) fields.Set
}

var (
	coreV1      = schema.GroupVersion{Version: "v1"}
	discoveryV1 = discoveryv1.SchemeGroupVersion
)

var services = resource{
	gvr: coreV1.WithResource("services"), kind: "Service", singular: "service", shortNames: []string{"svc"}, namespaced: true,
	each: func(c *Cache, fn func(metav1.Object)) {
		for _, key := range c.keysLocked() {
			fn(c.objects[key].service)
		}
	},
	list: func(items []metav1.Object, m metav1.ListMeta) runtime.Object {
		return &corev1.ServiceList{ListMeta: m, Items: values[corev1.Service](items)}
	},
	empty: func() metav1.Object { return &corev1.Service{} },
	fields: func(o metav1.Object) fields.Set {
		s := o.(*corev1.Service)
		return fields.Set{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
	},
}

var endpoints = resource{
	gvr: coreV1.WithResource("endpoints"), kind: "Endpoints", singular: "endpoints", shortNames: []string{"ep"}, namespaced: true,
	each: func(c *Cache, fn func(metav1.Object)) {
		for _, key := range c.keysLocked() {
			if e := c.objects[key].endpoints; e != nil {
				fn(e)
			}
		}
	},
	list: func(items []metav1.Object, m metav1.ListMeta) runtime.Object {
		return &corev1.EndpointsList{ListMeta: m, Items: values[corev1.Endpoints](items)}
	},
	empty: func() metav1.Object { return &corev1.Endpoints{} },
}

var endpointSlices = resource{
	gvr: discoveryV1.WithResource("endpointslices"), kind: "EndpointSlice", singular: "endpointslice", namespaced: true,
	each: func(c *Cache, fn func(metav1.Object)) {
		for _, key := range c.keysLocked() {
			for _, s := range c.objects[key].slices {
				fn(s)
			}
		}
	},
	list: func(items []metav1.Object, m metav1.ListMeta) runtime.Object {
		return &discoveryv1.EndpointSliceList{ListMeta: m, Items: values[discoveryv1.EndpointSlice](items)}
	},
	empty: func() metav1.Object { return &discoveryv1.EndpointSlice{} },
	fields: func(o metav1.Object) fields.Set {
		return fields.Set{"addressType": string(o.(*discoveryv1.EndpointSlice).AddressType)}
	},
}

var namespaces = resource{
	gvr: coreV1.WithResource("namespaces"), kind: "Namespace", singular: "namespace", shortNames: []string{"ns"},
	each: func(c *Cache, fn func(metav1.Object)) {
		names := make([]string, 0, len(c.namespaces))
		for name := range c.namespaces {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fn(c.namespaces[name].object)
		}
	},
	list: func(items []metav1.Object, m metav1.ListMeta) runtime.Object {
		return &corev1.NamespaceList{ListMeta: m, Items: values[corev1.Namespace](items)}
	},
	empty: func() metav1.Object { return &corev1.Namespace{} },
	fields: func(o metav1.Object) fields.Set {
		return fields.Set{"status.phase": string(o.(*corev1.Namespace).Status.Phase)}
	},
}

var nodes = resource{
	gvr: coreV1.WithResource("nodes"), kind: "Node", singular: "node", shortNames: []string{"no"},
	each: func(c *Cache, fn func(metav1.Object)) {
		for _, name := range slices.Sorted(maps.Keys(c.nodes)) {
			fn(c.nodes[name])
		}
	},
	list: func(items []metav1.Object, m metav1.ListMeta) runtime.Object {
		return &corev1.NodeList{ListMeta: m, Items: values[corev1.Node](items)}
	},
	empty: func() metav1.Object { return &corev1.Node{} },
}

// serviceCIDRs are the ranges cluster IPs come from (KEP-1880): one,
// svcreg's --service-cidr, named "kubernetes" as Kubernetes names its
// default. kube-proxy's nftables mode reads them to drop traffic to
// unallocated cluster IPs.
var serviceCIDRs = resource{
	gvr: networkingv1.SchemeGroupVersion.WithResource("servicecidrs"), kind: "ServiceCIDR", singular: "servicecidr",
	each: func(c *Cache, fn func(metav1.Object)) {
		if c.serviceCIDR != nil {
			fn(c.serviceCIDR)
		}
	},
	list: func(items []metav1.Object, m metav1.ListMeta) runtime.Object {
		return &networkingv1.ServiceCIDRList{ListMeta: m, Items: values[networkingv1.ServiceCIDR](items)}
	},
	empty: func() metav1.Object { return &networkingv1.ServiceCIDR{} },
}

// resources are every resource served, by group/version and plural name.
var resources = []*resource{&services, &endpoints, &namespaces, &nodes, &endpointSlices, &serviceCIDRs}

func lookup(gv schema.GroupVersion, plural string) *resource {
	for _, r := range resources {
		if r.gvr.GroupVersion() == gv && r.gvr.Resource == plural {
			return r
		}
	}
	return nil
}

// values are a list's items: the objects, by value, as Kubernetes' lists
// hold them.
func values[T any](items []metav1.Object) []T {
	out := make([]T, len(items))
	for i, o := range items {
		out[i] = *any(o).(*T)
	}
	return out
}

// keysLocked are the services' keys (namespace/name) in order.
func (c *Cache) keysLocked() []string {
	keys := make([]string, 0, len(c.objects))
	for k := range c.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fieldSet is what a fieldSelector matches an object against.
func (r *resource) fieldSet(o metav1.Object) fields.Set {
	set := fields.Set{"metadata.name": o.GetName()}
	if r.namespaced {
		set["metadata.namespace"] = o.GetNamespace()
	}
	if r.fields != nil {
		for k, v := range r.fields(o) {
			set[k] = v
		}
	}
	return set
}

func revisionString(rev int64) string { return strconv.FormatInt(rev, 10) }
