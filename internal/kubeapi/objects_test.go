// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

//lint:file-ignore SA1019 v1 Endpoints, deprecated in Kubernetes 1.33, is served on purpose: kube-proxy's and CoreDNS's older releases and many tools still read it

package kubeapi

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

func ep(instance, ip string, ready, serving, terminating bool) *svcregv1.Endpoint {
	return &svcregv1.Endpoint{Namespace: "shop", Service: "web", Instance: instance, Ip: ip, Ready: &ready, Serving: &serving,
		Terminating: terminating, Ports: []*svcregv1.EndpointPort{{Name: "http", Port: 8080}}}
}

func web() *svcregv1.Service {
	return &svcregv1.Service{Namespace: "shop", Name: "web", Uid: "u1", ResourceVersion: 3, ClusterIp: "10.96.0.10",
		Selector: map[string]string{"app": "web"}, Labels: map[string]string{"team": "a"},
		Ports: []*svcregv1.ServicePort{{Name: "http", Port: 80, TargetPort: "8080"}, {Name: "admin", Port: 9000, TargetPort: "admin"}, {Name: "raw", Port: 7000}}}
}

// TestEndpointsAsTheControllerBuildsThem: addresses and notReadyAddresses
// as the endpoints controller's addEndpointSubset sorts them.
func TestEndpointsAsTheControllerBuildsThem(t *testing.T) {
	for _, tc := range []struct {
		name                string
		eps                 []*svcregv1.Endpoint
		ready, notReady     []string
		truncated, headless bool
	}{
		{name: "ready is an address", eps: []*svcregv1.Endpoint{ep("a", "10.0.0.2", true, true, false), ep("b", "10.0.0.1", true, true, false)},
			ready: []string{"10.0.0.1", "10.0.0.2"}},
		{name: "not ready is a not-ready address", eps: []*svcregv1.Endpoint{ep("a", "10.0.0.1", false, false, false)},
			notReady: []string{"10.0.0.1"}},
		{name: "terminating and not ready is left out", eps: []*svcregv1.Endpoint{ep("a", "10.0.0.1", false, true, true), ep("b", "10.0.0.2", true, true, false)},
			ready: []string{"10.0.0.2"}},
		{name: "ready while terminating (publishNotReadyAddresses) stays", eps: []*svcregv1.Endpoint{ep("a", "10.0.0.1", true, true, true)},
			ready: []string{"10.0.0.1"}},
		{name: "none", eps: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Endpoints(web(), tc.eps, 0)
			var ready, notReady []string
			for _, s := range got.Subsets {
				for _, a := range s.Addresses {
					ready = append(ready, a.IP)
				}
				for _, a := range s.NotReadyAddresses {
					notReady = append(notReady, a.IP)
				}
			}
			if !slices.Equal(ready, tc.ready) || !slices.Equal(notReady, tc.notReady) {
				t.Errorf("addresses %v, not ready %v; want %v, %v", ready, notReady, tc.ready, tc.notReady)
			}
			if got.Labels["team"] != "a" || got.Name != "web" || got.Namespace != "shop" {
				t.Errorf("metadata %+v", got.ObjectMeta)
			}
		})
	}
}

// TestEndpointsTruncatedAtCapacity: past 1000 addresses the object keeps
// 1000, ready ones first, and says so.
func TestEndpointsTruncatedAtCapacity(t *testing.T) {
	var eps []*svcregv1.Endpoint
	for i := range 1100 {
		eps = append(eps, ep(fmt.Sprintf("i%04d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250), i%2 == 0, i%2 == 0, false))
	}
	got := Endpoints(web(), eps, 0)
	ready, notReady := len(got.Subsets[0].Addresses), len(got.Subsets[0].NotReadyAddresses)
	if ready != 550 || notReady != 450 || got.Annotations[AnnotationOverCapacity] != "truncated" {
		t.Errorf("ready %d, not ready %d, annotations %v; want 550, 450, truncated", ready, notReady, got.Annotations)
	}
	if a := Endpoints(web(), eps[:1000], 0).Annotations; a != nil {
		t.Errorf("1000 addresses annotated %v", a)
	}
}

// TestEndpointSlices: slices of at most 100, one per port set, every
// endpoint with its conditions; a selector with no endpoints keeps one
// empty slice; names are stable.
func TestEndpointSlices(t *testing.T) {
	var eps []*svcregv1.Endpoint
	for i := range 250 {
		eps = append(eps, ep(fmt.Sprintf("i%03d", i), fmt.Sprintf("10.0.%d.%d", i/200, i%200), i != 7, true, i == 7))
	}
	odd := ep("z", "10.1.0.1", true, true, false)
	odd.Ports[0].Port = 9090
	eps = append(eps, odd)
	got := EndpointSlices(web(), eps, 9)
	var sizes []int
	var names []string
	for _, s := range got {
		sizes = append(sizes, len(s.Endpoints))
		names = append(names, s.Name)
		if s.Labels[LabelServiceName] != "web" || s.Labels[LabelManagedBy] != ManagedBy || s.ResourceVersion != "9" {
			t.Errorf("slice %s: labels %v, rv %s", s.Name, s.Labels, s.ResourceVersion)
		}
	}
	if !slices.Equal(sizes, []int{100, 100, 50, 1}) || !slices.Equal(names, []string{"web-0", "web-1", "web-2", "web-3"}) {
		t.Errorf("slices %v %v, want sizes [100 100 50 1] named web-0..web-3", names, sizes)
	}
	c := got[0].Endpoints[7].Conditions
	if *c.Ready || !*c.Serving || !*c.Terminating {
		t.Errorf("the draining endpoint's conditions %+v, want ready=false serving=true terminating=true", c)
	}
	empty := EndpointSlices(web(), nil, 0)
	if len(empty) != 1 || empty[0].Name != "web-0" || len(empty[0].Endpoints) != 0 {
		t.Errorf("no endpoints: %+v, want one empty slice web-0", empty)
	}
}

// TestServiceAsKubernetesSaysIt: types, target ports, affinity, headless.
func TestServiceAsKubernetesSaysIt(t *testing.T) {
	svc := web()
	svc.SessionAffinity = svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP
	got := Service(svc)
	want := []intstr.IntOrString{intstr.FromInt32(8080), intstr.FromString("admin"), intstr.FromInt32(7000)}
	for i, p := range got.Spec.Ports {
		if p.TargetPort != want[i] || p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port %d: %+v, want target %v TCP", i, p, want[i])
		}
	}
	if got.Spec.Type != corev1.ServiceTypeClusterIP || got.Spec.SessionAffinity != corev1.ServiceAffinityClientIP ||
		*got.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10800 || got.ResourceVersion != "3" || got.UID != "u1" {
		t.Errorf("spec %+v", got.Spec)
	}
	svc.ClusterIp = "None"
	if eps := Endpoints(svc, nil, 0); eps.Labels[LabelHeadless] != "" {
		t.Errorf("headless endpoints labels %v", eps.Labels)
	} else if _, ok := eps.Labels[LabelHeadless]; !ok {
		t.Errorf("headless endpoints lack %s", LabelHeadless)
	}
	svc.Type, svc.ExternalName = svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME, "db.example.com"
	if got := Service(svc); got.Spec.ClusterIP != "" || got.Spec.ExternalName != "db.example.com" || HasEndpoints(svc, nil) {
		t.Errorf("ExternalName: %+v", got.Spec)
	}
}

// FuzzParsePath: any path parses to a resource or a Kubernetes error.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/api/v1/services", "/api/v1/namespaces/shop/services/web", "/apis/discovery.k8s.io/v1/endpointslices",
		"/api/v1/namespaces/shop", "/api/v1/namespaces/shop/namespaces", "/api/v1/services/web", "/apis//", "/api"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req, err := parsePath(path)
		if err == nil && req.res == nil {
			t.Fatalf("%q: no resource and no error", path)
		}
	})
}

// FuzzParseContinue: a continue token is this server's or a 400.
func FuzzParseContinue(f *testing.F) {
	f.Add(continueToken(12, 100))
	f.Add("")
	f.Add("MTIvLTE")
	f.Fuzz(func(t *testing.T, token string) {
		off, rev, err := parseContinue(token)
		if err == nil && token != "" && (off < 0 || rev <= 0) {
			t.Fatalf("%q: offset %d revision %d accepted", token, off, rev)
		}
	})
}
