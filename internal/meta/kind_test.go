// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package meta

import "testing"

// TestKindSpellings: every spelling of a kind reads back as that kind, so
// the store's events, the API's ObjectKind, documents and commands agree.
func TestKindSpellings(t *testing.T) {
	tests := []struct {
		kind                      Kind
		str, resource, doc, short string
	}{
		{KindService, "service", "services", "Service", "svc"},
		{KindInstance, "instance", "instances", "Instance", "inst"},
		{KindEndpoint, "endpoints", "endpoints", "Endpoints", "ep"},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.str {
			t.Errorf("%d.String() = %q, want %q", tt.kind, got, tt.str)
		}
		if got := tt.kind.Resource(); got != tt.resource {
			t.Errorf("%v.Resource() = %q, want %q", tt.kind, got, tt.resource)
		}
		if got := tt.kind.Document(); got != tt.doc {
			t.Errorf("%v.Document() = %q, want %q", tt.kind, got, tt.doc)
		}
		if k, ok := KindOfProto(tt.kind.Proto()); !ok || k != tt.kind {
			t.Errorf("KindOfProto(%v) = %v, %v", tt.kind.Proto(), k, ok)
		}
		if k, ok := KindOfDocument(tt.doc); !ok || k != tt.kind {
			t.Errorf("KindOfDocument(%q) = %v, %v", tt.doc, k, ok)
		}
		for _, typed := range []string{tt.str, tt.resource, tt.short, tt.doc} {
			if k, err := ParseResource(typed); err != nil || k != tt.kind {
				t.Errorf("ParseResource(%q) = %v, %v", typed, k, err)
			}
		}
	}
	if _, err := ParseResource("pods"); err == nil {
		t.Error("ParseResource(pods) succeeded")
	}
	if _, ok := KindOfDocument("List"); ok {
		t.Error("KindOfDocument(List) succeeded")
	}
}

func FuzzParseResource(f *testing.F) {
	for _, s := range []string{"svc", "Services", "ep", "", "pods", "INSTANCE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseResource(s)
		if err == nil {
			if again, err := ParseResource(k.Resource()); err != nil || again != k {
				t.Fatalf("%q parsed as %v, whose resource %q reads back as %v, %v", s, k, k.Resource(), again, err)
			}
		}
	})
}
