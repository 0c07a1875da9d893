// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"net/http"
	"strings"
	"testing"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// TestBrowserCannotWrite: what a web page can make a browser send to the
// loopback quick start (auth off) is refused, and changes nothing: a
// cross-site write, a text/plain or form body (no CORS preflight), a
// request whose Host is the page's own name (DNS rebinding). Before, each
// of these created a service.
func TestBrowserCannotWrite(t *testing.T) {
	ts := startServer(t, Config{Security: Security{HTTPAllowedHosts: []string{"registry.example"}}})
	body := `{"name":"csrf","ports":[{"port":80}]}`
	tests := []struct {
		name    string
		host    string
		headers map[string]string
		want    int
	}{
		{"a cross-site fetch", "", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"an old browser's cross-origin POST", "", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"a text/plain body", "", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, http.StatusUnsupportedMediaType},
		{"a form", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"a body without a content type", "", nil, http.StatusUnsupportedMediaType},
		{"a rebinding page's Host", "evil.example:7480", map[string]string{"Content-Type": "application/json"}, http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", ts.base+"/v1/namespaces/shop/services", strings.NewReader(body))
			if tt.host != "" {
				req.Host = tt.host
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%d (%s), want %d with a JSON error", resp.StatusCode, resp.Header.Get("Content-Type"), tt.want)
			}
		})
	}
	if _, err := ts.client.GetService(t.Context(), &svcregv1.GetServiceRequest{Namespace: "shop", Name: "csrf"}); err == nil {
		t.Fatal("a refused request created the service")
	}
	// Reads with a rebinding Host are refused too; the allowed names,
	// localhost and IP addresses are served.
	for host, want := range map[string]int{"evil.example": http.StatusMisdirectedRequest, "registry.example": 200, "localhost:7480": 200, "127.0.0.1": 200, "[::1]:7480": 200} {
		req, _ := http.NewRequest("GET", ts.base+"/v1/namespaces/shop/services", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET with Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// A program's write, same-origin and JSON, goes through.
	if code, _ := ts.do(t, "POST", "/v1/namespaces/shop/services", body); code != http.StatusOK {
		t.Errorf("a JSON write: %d", code)
	}
}
