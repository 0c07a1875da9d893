// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package validation

import (
	"strings"
	"testing"
)

func TestNameRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name  string
		check func(string) []string
		in    string
		valid bool
	}{
		{"1123 label", IsDNS1123Label, "web-1", true},
		{"1123 label leading digit", IsDNS1123Label, "1web", true},
		{"1123 label upper case", IsDNS1123Label, "Web", false},
		{"1123 label trailing dash", IsDNS1123Label, "web-", false},
		{"1123 label 63", IsDNS1123Label, long(63), true},
		{"1123 label 64", IsDNS1123Label, long(64), false},
		{"1123 label dot", IsDNS1123Label, "a.b", false},
		{"1035 label", IsDNS1035Label, "web", true},
		{"1035 label leading digit", IsDNS1035Label, "1web", false},
		{"1123 subdomain", IsDNS1123Subdomain, "web-1.zone-a", true},
		{"1123 subdomain empty part", IsDNS1123Subdomain, "a..b", false},
		{"1123 subdomain 253", IsDNS1123Subdomain, long(63) + "." + long(63) + "." + long(63) + "." + long(61), true},
		{"1123 subdomain 254", IsDNS1123Subdomain, long(63) + "." + long(63) + "." + long(63) + "." + long(62), false},
		{"qualified name", IsQualifiedName, "app", true},
		{"qualified name prefix", IsQualifiedName, "example.com/App_1", true},
		{"qualified name empty prefix", IsQualifiedName, "/app", false},
		{"qualified name two slashes", IsQualifiedName, "a/b/c", false},
		{"qualified name bad prefix", IsQualifiedName, "Example.com/app", false},
		{"qualified name long", IsQualifiedName, long(64), false},
		{"label value empty", IsValidLabelValue, "", true},
		{"label value", IsValidLabelValue, "v1.2_beta-3", true},
		{"label value space", IsValidLabelValue, "a b", false},
		{"label value 64", IsValidLabelValue, long(64), false},
		{"port name", IsValidPortName, "http-alt", true},
		{"port name digits only", IsValidPortName, "8080", false},
		{"port name double dash", IsValidPortName, "a--b", false},
		{"port name 16", IsValidPortName, long(16), false},
		{"port name upper", IsValidPortName, "HTTP", false},
		{"endpoint ip", IsValidEndpointIP, "10.0.0.1", true},
		{"endpoint ip loopback", IsValidEndpointIP, "127.0.0.1", true},
		{"endpoint ip v6", IsValidEndpointIP, "2001:db8::1", true},
		{"endpoint ip leading zero", IsValidEndpointIP, "010.0.0.1", false},
		{"endpoint ip 300", IsValidEndpointIP, "10.0.0.300", false},
		{"endpoint ip zone", IsValidEndpointIP, "fe80::1%eth0", false},
		{"endpoint ip link local", IsValidEndpointIP, "169.254.1.1", false},
		{"endpoint ip unspecified", IsValidEndpointIP, "0.0.0.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := tt.check(tt.in)
			if (len(msgs) == 0) != tt.valid {
				t.Errorf("%q: messages %v, want valid=%v", tt.in, msgs, tt.valid)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{Invalid(Path("service").Child("ports").Index(0).Child("port"), int32(0), "must be between 1 and 65535, inclusive"),
			"service.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"},
		{Required("service.name", ""), "service.name: Required value"},
		{Duplicate(Path("labels").Key("a"), "x"), `labels["a"]: Duplicate value: "x"`},
		{NotSupported("type", "X", []string{"A", "B"}), `type: Unsupported value: "X": supported values: "A", "B"`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if (ErrorList{}).Err() != nil {
		t.Errorf("empty list must be a nil error")
	}
}

// FuzzNameRules: the checks never panic and agree with each other (every
// DNS-1035 label is a DNS-1123 label, every label is a subdomain).
func FuzzNameRules(f *testing.F) {
	for _, s := range []string{"web", "1web", "a.b", "example.com/app", "", "-", "http-alt", "10.0.0.1", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(IsDNS1035Label(s)) == 0 && len(IsDNS1123Label(s)) != 0 {
			t.Fatalf("%q: a DNS-1035 label that is not a DNS-1123 label", s)
		}
		if len(IsDNS1123Label(s)) == 0 && len(IsDNS1123Subdomain(s)) != 0 {
			t.Fatalf("%q: a label that is not a subdomain", s)
		}
		if len(IsDNS1123Label(s)) == 0 && len(IsValidLabelValue(s)) != 0 {
			t.Fatalf("%q: a DNS label that is not a label value", s)
		}
		IsQualifiedName(s)
		IsValidPortName(s)
		IsValidEndpointIP(s)
	})
}
