// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

//lint:file-ignore SA1019 v1 Endpoints, deprecated in Kubernetes 1.33, is served on purpose: kube-proxy's and CoreDNS's older releases and many tools still read it

package kubeapi

import (
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Server-side printing: kubectl get asks for a meta.k8s.io/v1 Table
// (Accept: application/json;as=Table;v=v1;g=meta.k8s.io) and prints its
// columns; these are kube-apiserver's for the same kinds
// (pkg/printers/internalversion).

// printer is a kind's columns and how an object fills them.
type printer struct {
	columns []metav1.TableColumnDefinition
	cells   func(o metav1.Object) []any
}

func column(name, typ, description string, priority int32) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description, Priority: priority}
}

var (
	// Format "name" is how kubectl finds the column it prefixes with the
	// kind when several kinds are printed.
	nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: "Name must be unique within a namespace."}
	ageColumn  = column("Age", "string", "The time since the object was created.", 0)
)

var printers = map[*resource]printer{
	&services: {
		columns: []metav1.TableColumnDefinition{nameColumn, column("Type", "string", "The type of the service.", 0),
			column("Cluster-IP", "string", "The cluster IP of the service.", 0), column("External-IP", "string", "The external IPs of the service.", 0),
			column("Port(s)", "string", "The ports of the service.", 0), ageColumn, column("Selector", "string", "The label selector of the service.", 1)},
		cells: func(o metav1.Object) []any {
			s := o.(*corev1.Service)
			clusterIP := s.Spec.ClusterIP
			if clusterIP == "" {
				clusterIP = "<none>"
			}
			return []any{s.Name, string(s.Spec.Type), clusterIP, externalIP(s), servicePorts(s.Spec.Ports), age(o), selector(s.Spec.Selector)}
		},
	},
	&endpoints: {
		columns: []metav1.TableColumnDefinition{nameColumn, column("Endpoints", "string", "The endpoints' addresses and ports.", 0), ageColumn},
		cells: func(o metav1.Object) []any {
			var addrs []string
			for _, ss := range o.(*corev1.Endpoints).Subsets {
				for _, a := range ss.Addresses {
					if len(ss.Ports) == 0 {
						addrs = append(addrs, a.IP)
					}
					for _, p := range ss.Ports {
						addrs = append(addrs, a.IP+":"+strconv.Itoa(int(p.Port)))
					}
				}
			}
			return []any{o.GetName(), firstThree(addrs), age(o)}
		},
	},
	&endpointSlices: {
		columns: []metav1.TableColumnDefinition{nameColumn, column("AddressType", "string", "The type of the addresses.", 0),
			column("Ports", "string", "The ports of the slice.", 0), column("Endpoints", "string", "The endpoints' addresses.", 0), ageColumn},
		cells: func(o metav1.Object) []any {
			s := o.(*discoveryv1.EndpointSlice)
			var ports, addrs []string
			for _, p := range s.Ports {
				if p.Port != nil {
					ports = append(ports, strconv.Itoa(int(*p.Port)))
				}
			}
			for _, e := range s.Endpoints {
				addrs = append(addrs, e.Addresses...)
			}
			portCell := strings.Join(ports, ",")
			if portCell == "" {
				portCell = "<unset>"
			}
			return []any{s.Name, string(s.AddressType), portCell, firstThree(addrs), age(o)}
		},
	},
	&nodes: {
		columns: []metav1.TableColumnDefinition{nameColumn, column("Zone", "string", "The node's topology.kubernetes.io/zone.", 0), ageColumn},
		cells: func(o metav1.Object) []any {
			zone := o.GetLabels()[corev1.LabelTopologyZone]
			if zone == "" {
				zone = "<none>"
			}
			return []any{o.GetName(), zone, age(o)}
		},
	},
	&namespaces: {
		columns: []metav1.TableColumnDefinition{nameColumn, column("Status", "string", "The status of the namespace.", 0), ageColumn},
		cells: func(o metav1.Object) []any {
			return []any{o.GetName(), string(o.(*corev1.Namespace).Status.Phase), age(o)}
		},
	},
}

// now is the printers' clock (a package hook tests replace).
var now = time.Now

func age(o metav1.Object) string {
	t := o.GetCreationTimestamp()
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now().Sub(t.Time))
}

func externalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	case corev1.ServiceTypeLoadBalancer:
		return "<pending>"
	}
	return "<none>"
}

func servicePorts(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "<none>"
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = strconv.Itoa(int(p.Port))
		if p.NodePort != 0 {
			out[i] += ":" + strconv.Itoa(int(p.NodePort))
		}
		out[i] += "/" + string(p.Protocol)
	}
	return strings.Join(out, ",")
}

func selector(sel map[string]string) string {
	if len(sel) == 0 {
		return "<none>"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		out = append(out, k+"="+sel[k])
	}
	return strings.Join(out, ",")
}

// firstThree is how kubectl prints a list of addresses.
func firstThree(list []string) string {
	switch {
	case len(list) == 0:
		return "<none>"
	case len(list) > 3:
		return strings.Join(list[:3], ",") + fmt.Sprintf(" + %d more...", len(list)-3)
	}
	return strings.Join(list, ",")
}

// wantsTable reports whether the client asked for a Table.
func wantsTable(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, p, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == mediaJSON && p["as"] == "Table" && p["g"] == metav1.GroupName && p["v"] == "v1" {
			return true
		}
	}
	return false
}

// table prints objects as a Table; each row carries the object as
// includeObject asks (Metadata by default, which kubectl reads the
// namespace column from).
func table(r *http.Request, res *resource, items []metav1.Object, lm metav1.ListMeta) *metav1.Table {
	p := printers[res]
	t := &metav1.Table{ListMeta: lm, ColumnDefinitions: p.columns, Rows: make([]metav1.TableRow, 0, len(items))}
	include := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject"))
	for _, o := range items {
		row := metav1.TableRow{Cells: p.cells(o)}
		switch include {
		case metav1.IncludeNone:
		case metav1.IncludeObject:
			full := o.(runtime.Object).DeepCopyObject()
			full.GetObjectKind().SetGroupVersionKind(res.gvr.GroupVersion().WithKind(res.kind))
			row.Object.Object = full
		default:
			m := &metav1.PartialObjectMetadata{ObjectMeta: *o.(metav1.ObjectMetaAccessor).GetObjectMeta().(*metav1.ObjectMeta)}
			m.APIVersion, m.Kind = metav1.SchemeGroupVersion.String(), "PartialObjectMetadata"
			row.Object.Object = m
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}
