// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"runtime"
	"slices"
	"strings"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
)

// KubernetesVersion is the Kubernetes release whose API this package
// serves (the k8s.io/api module it is built with).
const KubernetesVersion = "1.37"

// verbs are what a resource serves: every one reads, and Services and
// Endpoints (of selectorless services) are written.
func (r *resource) verbs() metav1.Verbs {
	if r == &services || r == &endpoints {
		return metav1.Verbs{"create", "delete", "get", "list", "patch", "update", "watch"}
	}
	return metav1.Verbs{"get", "list", "watch"}
}

// discovery answers the discovery documents: legacy (/api, /apis, a
// group, a group version) and, when asked for, the aggregated ones
// (KEP-3352) that kubectl and client-go ask for first.
func (h *handler) discovery(w http.ResponseWriter, r *http.Request) bool {
	path := strings.TrimSuffix(r.URL.Path, "/")
	aggregated := wantsAggregated(r)
	switch {
	case path == "/api" && aggregated:
		writeAggregated(w, r, groupDiscovery(coreV1))
	case path == "/api":
		write(w, r, http.StatusOK, coreV1, &metav1.APIVersions{Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
	case path == "/apis" && aggregated:
		writeAggregated(w, r, groupDiscovery(groupVersions()...))
	case path == "/apis":
		list := &metav1.APIGroupList{}
		for _, gv := range groupVersions() {
			list.Groups = append(list.Groups, apiGroup(gv))
		}
		write(w, r, http.StatusOK, coreV1, list)
	case path == "/api/v1":
		write(w, r, http.StatusOK, coreV1, resourceList(coreV1))
	case path == "/openapi/v2":
		openAPIV2(w, r)
	default:
		for _, gv := range groupVersions() {
			switch path {
			case "/apis/" + gv.Group:
				g := apiGroup(gv)
				write(w, r, http.StatusOK, coreV1, &g)
				return true
			case "/apis/" + gv.String():
				write(w, r, http.StatusOK, coreV1, resourceList(gv))
				return true
			}
		}
		return false
	}
	return true
}

// groupVersions are the named groups served (the core group is /api's).
func groupVersions() []schema.GroupVersion {
	var out []schema.GroupVersion
	for _, r := range resources {
		if gv := r.gvr.GroupVersion(); gv.Group != "" && !slices.Contains(out, gv) {
			out = append(out, gv)
		}
	}
	return out
}

func apiGroup(gv schema.GroupVersion) metav1.APIGroup {
	v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
	return metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
}

func resourceList(gv schema.GroupVersion) *metav1.APIResourceList {
	list := &metav1.APIResourceList{GroupVersion: gv.String()}
	for _, r := range resources {
		if r.gvr.GroupVersion() == gv {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: r.gvr.Resource, SingularName: r.singular,
				Namespaced: r.namespaced, Kind: r.kind, Verbs: r.verbs(), ShortNames: r.shortNames})
		}
	}
	return list
}

func groupDiscovery(gvs ...schema.GroupVersion) *apidiscoveryv2.APIGroupDiscoveryList {
	list := &apidiscoveryv2.APIGroupDiscoveryList{}
	for _, gv := range gvs {
		v := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		for _, r := range resources {
			if r.gvr.GroupVersion() != gv {
				continue
			}
			scope := apidiscoveryv2.ScopeCluster
			if r.namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			v.Resources = append(v.Resources, apidiscoveryv2.APIResourceDiscovery{Resource: r.gvr.Resource, SingularResource: r.singular,
				ResponseKind: &metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: r.kind},
				Scope:        scope, Verbs: r.verbs(), ShortNames: r.shortNames})
		}
		list.Items = append(list.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: gv.Group},
			Versions: []apidiscoveryv2.APIVersionDiscovery{v}})
	}
	return list
}

// aggregatedMedia is how an aggregated discovery document is typed.
const aggregatedMedia = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

func wantsAggregated(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, p, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == mediaJSON && p["g"] == apidiscoveryv2.SchemeGroupVersion.Group && p["v"] == "v2" && p["as"] == "APIGroupDiscoveryList" {
			return true
		}
	}
	return false
}

func writeAggregated(w http.ResponseWriter, r *http.Request, list *apidiscoveryv2.APIGroupDiscoveryList) {
	info, _ := kruntime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaJSON)
	var buf bytes.Buffer
	if err := codecs.EncoderForVersion(info.Serializer, apidiscoveryv2.SchemeGroupVersion).Encode(list, &buf); err != nil {
		writeStatus(w, r, err)
		return
	}
	w.Header().Set("Content-Type", aggregatedMedia)
	w.Write(buf.Bytes())
}

// version answers /version: the Kubernetes API level served, and which
// svcreg serves it (a pre-release of that level: v1.37.0-svcreg).
func (h *handler) version(w http.ResponseWriter, _ *http.Request) {
	major, minor, _ := strings.Cut(KubernetesVersion, ".")
	info := version.Info{Major: major, Minor: minor, GitVersion: "v" + KubernetesVersion + ".0-svcreg",
		GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH}
	w.Header().Set("Content-Type", mediaJSON)
	json.NewEncoder(w).Encode(info)
}

// openAPIV2 answers /openapi/v2 with an OpenAPI document that defines no
// kinds: kubectl apply's client-side validation downloads it first, and
// skips the kinds it does not define (svcreg checks what it is sent and
// answers 422 naming the field); its patches use the types' own struct
// tags.
func openAPIV2(w http.ResponseWriter, r *http.Request) {
	doc := &openapiv2.Document{Swagger: "2.0", Info: &openapiv2.Info{Title: "svcreg", Version: "v" + KubernetesVersion + ".0-svcreg"},
		Paths: &openapiv2.Paths{}}
	if strings.Contains(r.Header.Get("Accept"), "protobuf") {
		b, err := proto.Marshal(doc)
		if err != nil {
			writeStatus(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream") // as kube-openapi answers that Accept
		w.Write(b)
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	fmt.Fprintf(w, `{"swagger":"2.0","info":{"title":"svcreg","version":%q},"paths":{}}`, doc.Info.Version)
}
