// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import "testing"

func TestPageTokenRoundTrip(t *testing.T) {
	tests := []struct{ key, ns, sel string }{
		{"shop/web", "shop", ""},
		{"a/b|c", "-", "app=web"},
	}
	for _, tt := range tests {
		tok := encodePageToken(tt.key, tt.ns, tt.sel)
		got, err := decodePageToken(tok, tt.ns, tt.sel)
		if err != nil || got != tt.key {
			t.Errorf("round trip of %q: %q, %v", tt.key, got, err)
		}
		if _, err := decodePageToken(tok, tt.ns, tt.sel+",x"); err == nil {
			t.Errorf("token accepted for another query")
		}
	}
	if encodePageToken("", "a") != "" {
		t.Errorf("last page must have an empty token")
	}
}

// FuzzDecodePageToken: any token either decodes for its query or is
// rejected with an error; never a panic.
func FuzzDecodePageToken(f *testing.F) {
	f.Add(encodePageToken("shop/web", "shop", ""))
	f.Add("garbage")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		key, err := decodePageToken(token, "shop", "")
		if err == nil && token != "" && key == "" {
			t.Fatalf("token %q decoded to an empty key", token)
		}
	})
}
