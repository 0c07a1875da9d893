// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package resolver

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		authority, endpoint string
		want                Target
		wantErr             string
	}{
		{"", "web.shop:grpc", Target{Service: "web", Namespace: "shop", PortName: "grpc"}, ""},
		{"", "web.shop:8080", Target{Service: "web", Namespace: "shop", Port: 8080}, ""},
		{"", "web.shop", Target{Service: "web", Namespace: "shop"}, ""},
		{"", "web", Target{Service: "web", Namespace: "default"}, ""},
		{"", "web:grpc", Target{Service: "web", Namespace: "default", PortName: "grpc"}, ""},
		{"10.0.0.5:7400", "web.shop:grpc", Target{Registry: "10.0.0.5:7400", Service: "web", Namespace: "shop", PortName: "grpc"}, ""},
		{"", "", Target{}, "no service name"},
		{"", ".shop:grpc", Target{}, "no service name"},
		{"", "Web.shop", Target{}, "service name"},
		{"", "1web.shop", Target{}, "service name"},
		{"", "web.Shop", Target{}, "namespace"},
		{"", "web.shop.extra", Target{}, "namespace"},
		{"", "web.shop:", Target{}, "empty port"},
		{"", "web.shop:0", Target{}, "port 0"},
		{"", "web.shop:70000", Target{}, "port 70000"},
		{"", "web.shop:Bad_Port", Target{}, "port name"},
	}
	for _, tt := range tests {
		t.Run(tt.authority+"/"+tt.endpoint, func(t *testing.T) {
			got, err := ParseTarget(tt.authority, tt.endpoint)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "svcreg:") {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			// The canonical form parses back to the same target.
			u := got.String()
			rest := strings.TrimPrefix(u, Scheme+"://")
			auth, ep, _ := strings.Cut(rest, "/")
			again, err := ParseTarget(auth, ep)
			if err != nil || again != got {
				t.Errorf("round trip of %s: %+v, %v", u, again, err)
			}
		})
	}
}

// FuzzParseTarget: never a panic; anything accepted has a valid service
// and namespace and renders to a target that parses the same.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"web.shop:grpc", "web", "web.shop:80", ":", "a.b.c", "web.shop:-1", "x:y:z"} {
		f.Add("", s)
		f.Add("127.0.0.1:7400", s)
	}
	f.Fuzz(func(t *testing.T, authority, endpoint string) {
		got, err := ParseTarget(authority, endpoint)
		if err != nil {
			return
		}
		if got.Service == "" || got.Namespace == "" {
			t.Fatalf("accepted %q without service or namespace", endpoint)
		}
		if got.Port < 0 || got.Port > 65535 {
			t.Fatalf("port %d", got.Port)
		}
	})
}
