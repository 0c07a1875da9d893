// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestRESTKubernetesSpellings: what a Kubernetes user types is accepted
// as svcreg's own spelling, and what cannot be understood is refused,
// naming the field and what it accepts; nothing is silently ignored.
func TestRESTKubernetesSpellings(t *testing.T) {
	ts := startServer(t, Config{})
	tests := []struct {
		name, method, path, body string
		code                     int
		want                     string // in the response body
	}{
		{"type, affinity, protocol and an int targetPort", "POST", "/v1/namespaces/shop/services",
			`{"name":"k8s","type":"NodePort","sessionAffinity":"ClientIP","ports":[{"port":80,"targetPort":8080,"protocol":"UDP"}]}`, 200,
			`"type":"SERVICE_TYPE_NODE_PORT"`},
		{"svcreg's own spellings still", "POST", "/v1/namespaces/shop/services",
			`{"name":"own","type":"SERVICE_TYPE_CLUSTER_IP","ports":[{"port":80,"protocol":"PROTOCOL_TCP"}]}`, 200, `"name":"own"`},
		{"clusterIP None: headless", "POST", "/v1/namespaces/shop/services",
			`{"name":"headless","clusterIP":"None","selector":{"app":"x"},"ports":[{"port":80}]}`, 200, `"clusterIp":"None"`},
		{"ExternalName", "POST", "/v1/namespaces/shop/services",
			`{"name":"db","type":"ExternalName","externalName":"db.example.com"}`, 200, `"SERVICE_TYPE_EXTERNAL_NAME"`},
		{"an instance's TCP", "POST", "/v1/namespaces/shop/instances",
			`{"name":"i-1","ip":"10.0.0.1","ports":[{"name":"http","port":80,"protocol":"TCP"}]}`, 200, `"PROTOCOL_TCP"`},
		{"a bad type lists the accepted values", "POST", "/v1/namespaces/shop/services",
			`{"name":"bad","type":"Headless","ports":[{"port":80}]}`, 422, "want one of ClusterIP, ExternalName, LoadBalancer, NodePort"},
		{"a bad protocol names its port", "POST", "/v1/namespaces/shop/services",
			`{"name":"bad2","ports":[{"port":80,"protocol":"QUIC"}]}`, 422, "service.ports[0].protocol"},
		{"a body in another namespace than its path", "POST", "/v1/namespaces/shop/services",
			`{"name":"moved","namespace":"other","ports":[{"port":80}]}`, 400, `service.namespace \"other\" contradicts the path's \"shop\"`},
		{"a body naming another object than its path", "PATCH", "/v1/namespaces/shop/services/k8s",
			`{"name":"else","labels":{"a":"b"}}`, 400, `service.name \"else\" contradicts`},
		{"error paths in the JSON names sent", "POST", "/v1/namespaces/shop/services",
			`{"name":"badip","clusterIp":"300.1.1.1","ports":[{"port":80}]}`, 422, `"field":"service.clusterIp"`},
		{"a misspelt query parameter", "GET", "/v1/namespaces/shop/services?labelselector=app%3Dx", "", 400, `unknown query parameter \"labelselector\"`},
		{"the right one", "GET", "/v1/namespaces/shop/services?labelSelector=app%3Dx", "", 200, ""},
		{"a patch's enums", "PATCH", "/v1/namespaces/shop/services/k8s",
			`{"type":"LoadBalancer"}`, 200, `"type":"SERVICE_TYPE_LOAD_BALANCER"`},
		{"a whole request's body (endpoints of a selectorless service)", "PUT", "/v1/namespaces/shop/services/own/endpoints",
			`{"endpoints":[{"instance":"ext-1","ip":"10.0.0.9","ports":[{"port":80,"protocol":"TCP"}]}]}`, 200, `"PROTOCOL_TCP"`},
		{"a whole request's body naming another service", "PUT", "/v1/namespaces/shop/services/own/endpoints",
			`{"service":"else","endpoints":[]}`, 400, `service \"else\" contradicts the path's \"own\"`},
		{"a bad enum in a whole request's body", "PUT", "/v1/namespaces/shop/services/own/endpoints",
			`{"endpoints":[{"ip":"10.0.0.9","ports":[{"port":80,"protocol":"tcp"}]}]}`, 422, `endpoints[0].ports[0].protocol`},
		{"a renewal's body is not an object's: it reaches the handler", "POST", "/v1/namespaces/shop/instances/i-1:renew", `{}`, 400, "has no lease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := ts.do(t, tt.method, tt.path, tt.body)
			text := fmt.Sprint(body)
			if raw, err := jsonText(body); err == nil {
				text = raw
			}
			if code != tt.code || !strings.Contains(text, tt.want) {
				t.Errorf("%s %s: %d %s, want %d with %q", tt.method, tt.path, code, text, tt.code, tt.want)
			}
		})
	}
	if code, body := ts.do(t, "GET", "/v1/namespaces/shop/services/moved", ""); code != 404 {
		t.Errorf("the refused body was stored: %d %v", code, body)
	}
}

func jsonText(v map[string]any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
