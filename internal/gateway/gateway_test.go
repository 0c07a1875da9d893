// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestGatewayRecoversPanics: a panic in an HTTP handler is a 500 with the
// reason INTERNAL, and the server goes on.
func TestGatewayRecoversPanics(t *testing.T) {
	h := handler{Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}.recover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/x", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "INTERNAL") {
		t.Fatalf("a panicking handler: %d %s", rec.Code, rec.Body)
	}
}

// TestRESTBodies: every REST route with a body is known with the message
// its body becomes, so none escapes the spellings.
func TestRESTBodies(t *testing.T) {
	for route, want := range map[string]protoreflect.FullName{
		"POST /v1/namespaces/{service.namespace}/services":                    "svcreg.v1.Service",
		"PATCH /v1/namespaces/{service.namespace}/services/{service.name}":    "svcreg.v1.Service",
		"PUT /v1/namespaces/{service.namespace}/services/{service.name}":      "svcreg.v1.Service",
		"PATCH /v1/namespaces/{instance.namespace}/instances/{instance.name}": "svcreg.v1.Instance",
		"PUT /v1/namespaces/{namespace}/services/{service}/endpoints":         "svcreg.v1.ReplaceEndpointsRequest",
		"POST /v1/namespaces/{namespace}/instances/{name}:renew":              "svcreg.v1.RenewInstanceLeaseRequest",
	} {
		if md := restBodies[route]; md == nil || md.FullName() != want {
			t.Errorf("%s: body %v, want %s", route, md, want)
		}
	}
}

// FuzzRespellBody: any body gives valid JSON or an error, never a panic,
// and a respelt body respells to itself (the rewrite is stable).
func FuzzRespellBody(f *testing.F) {
	for _, seed := range []string{
		`{"name":"k8s","type":"NodePort","sessionAffinity":"ClientIP","ports":[{"port":80,"targetPort":8080,"protocol":"UDP"}]}`,
		`{"clusterIP":"None","ports":[null,1,{"targetPort":1e99}]}`, `{"type":7}`, `[]`, `null`, `{"namespace":"other"}`, ``,
		`{"namespace":"shop","service":"web","endpoints":[{"addresses":["10.0.0.1"],"ports":[{"protocol":"SCTP"}]}]}`,
		`{"labels":{"a":{"b":1}},"CLUSTERIP":"x","clusterIp":"y"}`,
	} {
		for route := range bodyRoutes {
			f.Add(route, seed)
		}
	}
	f.Fuzz(func(t *testing.T, route, body string) {
		r, ok := bodyRoutes[route]
		if !ok {
			return
		}
		out, err := respell(r.md, r.params, []byte(body))
		if err != nil {
			return
		}
		if !json.Valid(out) && json.Valid([]byte(body)) {
			t.Fatalf("valid %q became invalid %q", body, out)
		}
		if json.Valid(out) {
			again, err := respell(r.md, r.params, out)
			if err != nil || (json.Valid(again) && string(again) != string(out)) {
				t.Fatalf("respelling %q again: %q, %v", out, again, err)
			}
		}
	})
}

// bodyRoutes are the shapes of the REST API's bodies: an object under
// its route (body "service") and a whole request (body "*").
var bodyRoutes = map[string]struct {
	md     protoreflect.MessageDescriptor
	params map[string]string
}{
	"service":   {(*svcregv1.Service)(nil).ProtoReflect().Descriptor(), map[string]string{"service.namespace": "shop", "service.name": "web"}},
	"instance":  {(*svcregv1.Instance)(nil).ProtoReflect().Descriptor(), map[string]string{"instance.namespace": "shop"}},
	"endpoints": {(*svcregv1.ReplaceEndpointsRequest)(nil).ProtoReflect().Descriptor(), map[string]string{"namespace": "shop", "service": "web"}},
}

func TestJSONPath(t *testing.T) {
	for in, want := range map[string]string{
		"service.cluster_ip":                 "service.clusterIp",
		"service.ports[0].target_port":       "service.ports[0].targetPort",
		"service.labels[my_key]":             "service.labels[my_key]",
		"instance.name":                      "instance.name",
		"service.scheduler_options.hash_key": "service.schedulerOptions.hashKey",
	} {
		if got := jsonPath(in); got != want {
			t.Errorf("jsonPath(%q) = %q, want %q", in, got, want)
		}
	}
}
