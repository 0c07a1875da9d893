// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"

	grpcxds "google.golang.org/grpc/xds"
)

// TestXDSBootstrap: what `svcreg xds bootstrap` prints is a bootstrap
// grpc-go's own xDS client accepts, and bad flag combinations are refused.
func TestXDSBootstrap(t *testing.T) {
	tests := []struct {
		name                    string
		caCert, cert, key, zone string
		wantErr                 string
		wantIn                  []string
	}{
		{"insecure", "", "", "", "", "", []string{`"type": "insecure"`, `"server_uri": "127.0.0.1:7400"`, `"id": "n1"`}},
		{"tls with a zone", "ca.pem", "", "", "zone-a", "", []string{`"type": "tls"`, `ca.pem"`, `"zone": "zone-a"`}},
		{"mutual tls", "ca.pem", "c.pem", "c-key.pem", "", "", []string{`"certificate_file"`, `"private_key_file"`}},
		{"a certificate without TLS", "", "c.pem", "c-key.pem", "", "--cacert", nil},
		{"a certificate without its key", "ca.pem", "c.pem", "", "", "go together", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := xdsBootstrap("127.0.0.1:7400", "n1", tt.zone, tt.caCert, tt.cert, tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.wantIn {
				if !strings.Contains(string(js), want) {
					t.Errorf("%s lacks %s", js, want)
				}
			}
			if _, err := grpcxds.NewXDSResolverWithConfigForTesting(js); err != nil {
				t.Errorf("grpc-go refuses the bootstrap: %v\n%s", err, js)
			}
		})
	}
}
