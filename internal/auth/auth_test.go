// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package auth

import (
	"errors"
	"strings"
	"testing"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

func binding(r svcregv1.Role, ns ...string) *svcregv1.RoleBinding {
	return &svcregv1.RoleBinding{Role: r, Namespaces: ns}
}

func TestAuthorize(t *testing.T) {
	reader := &Principal{Accessor: "r", Roles: []*svcregv1.RoleBinding{binding(svcregv1.Role_ROLE_READER, "shop")}}
	teams := &Principal{Accessor: "t", Roles: []*svcregv1.RoleBinding{binding(svcregv1.Role_ROLE_ADMIN, "team-*")}}
	registrar := &Principal{Accessor: "g", Roles: []*svcregv1.RoleBinding{binding(svcregv1.Role_ROLE_REGISTRAR, "*")}}
	both := &Principal{Accessor: "b", Roles: []*svcregv1.RoleBinding{
		binding(svcregv1.Role_ROLE_REGISTRAR, "*"), binding(svcregv1.Role_ROLE_ADMIN, "shop")}}
	operator := &Principal{Accessor: "o", Roles: []*svcregv1.RoleBinding{binding(svcregv1.Role_ROLE_OPERATOR)}}
	for _, tt := range []struct {
		name    string
		p       *Principal
		action  Action
		ns      string
		err     error
		ownOnly bool
	}{
		{"nobody", nil, Read, "shop", ErrUnauthenticated, false},
		{"auth off", Anyone, Operate, "", nil, false},
		{"reader reads", reader, Read, "shop", nil, false},
		{"reader reads elsewhere", reader, Read, "web", ErrPermissionDenied, false},
		{"reader writes", reader, WriteInstance, "shop", ErrPermissionDenied, false},
		{"reader lists everything", reader, Read, meta.AllNamespaces, nil, false},
		{"prefix admin", teams, WriteService, "team-a", nil, false},
		{"prefix admin elsewhere", teams, WriteService, "teams", ErrPermissionDenied, false},
		{"admin operates", teams, Operate, "", ErrPermissionDenied, false},
		{"registrar registers", registrar, WriteInstance, "any", nil, true},
		{"registrar writes services", registrar, WriteService, "any", ErrPermissionDenied, false},
		{"admin binding lifts own-only", both, WriteInstance, "shop", nil, false},
		{"registrar binding elsewhere", both, WriteInstance, "web", nil, true},
		{"operator", operator, Operate, "", nil, false},
		{"operator writes anywhere", operator, WriteService, "x", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Authorize(tt.p, tt.action, tt.ns)
			if !errors.Is(err, tt.err) || err == nil && tt.err != nil {
				t.Fatalf("Authorize: %v, want %v", err, tt.err)
			}
			if err == nil && g.OwnOnly != tt.ownOnly {
				t.Errorf("own only %v, want %v", g.OwnOnly, tt.ownOnly)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	for _, tt := range []struct {
		pattern, ns string
		want        bool
	}{
		{"shop", "shop", true}, {"shop", "shops", false}, {"team-*", "team-a", true}, {"team-*", "team", false},
		{"*", "anything", true}, {"team-*", "team-", true},
	} {
		if got := Matches(tt.pattern, tt.ns); got != tt.want {
			t.Errorf("Matches(%q, %q) = %v", tt.pattern, tt.ns, got)
		}
	}
}

func TestValidPattern(t *testing.T) {
	for _, tt := range []struct {
		pattern string
		want    bool
	}{
		{"shop", true}, {"team-*", true}, {"*", true}, {"team*", true}, {"", false}, {"-x", false}, {"x-", false},
		{"a*b", false}, {"**", false}, {"Shop", false}, {strings.Repeat("a", 64), false}, {"a.b", false},
	} {
		if got := ValidPattern(tt.pattern); got != tt.want {
			t.Errorf("ValidPattern(%q) = %v", tt.pattern, got)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for _, tt := range []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc", "abc", true}, {"bearer  abc ", "abc", true}, {"Basic abc", "", false}, {"Bearer", "", false},
		{"Bearer ", "", false}, {"", "", false},
	} {
		got, ok := BearerToken(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v", tt.header, got, ok)
		}
	}
}

func TestSecrets(t *testing.T) {
	s := NewSecret()
	if !strings.HasPrefix(s, SecretPrefix) || len(s) < 40 || s == NewSecret() {
		t.Errorf("NewSecret: %q", s)
	}
	if !Equal(s, Hash(s)) || Equal(s+"x", Hash(s)) {
		t.Errorf("Equal does not tell the secret from another")
	}
	if a := NewAccessor(); !ValidAccessor(a) || !ValidAccessor("bootstrap") || ValidAccessor("Bad") || ValidAccessor("") {
		t.Errorf("ValidAccessor: %q", a)
	}
}

// FuzzValidators: the validators and the header parser never panic, and
// what they accept is what the store and the indexes take.
func FuzzValidators(f *testing.F) {
	for _, s := range []string{"shop", "team-*", "*", "Bearer svcr_abc", "spiffe://cluster/ns/shop/sa/web", "a\x00b", "bearer\t x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidPattern(s) {
			name, _ := strings.CutSuffix(s, "*")
			if strings.ContainsAny(name, "*./ \x00") || len(s) > 63 {
				t.Fatalf("ValidPattern accepted %q", s)
			}
			if s == "*" && !Matches(s, "shop") {
				t.Fatalf("* does not match shop")
			}
		}
		if ValidAccessor(s) && strings.ContainsAny(s, "\x00 /") {
			t.Fatalf("ValidAccessor accepted %q", s)
		}
		if ValidIdentity(s) && strings.ContainsAny(s, "\x00 \n") {
			t.Fatalf("ValidIdentity accepted %q", s)
		}
		if tok, ok := BearerToken(s); ok && (tok == "" || strings.TrimSpace(tok) != tok) {
			t.Fatalf("BearerToken(%q) = %q", s, tok)
		}
	})
}

// BenchmarkAuthorize is the one decision's cost per request: a token with
// three bindings, the last one matching.
func BenchmarkAuthorize(b *testing.B) {
	p := &Principal{Accessor: "a", Roles: []*svcregv1.RoleBinding{
		binding(svcregv1.Role_ROLE_READER, "web", "db"), binding(svcregv1.Role_ROLE_ADMIN, "team-*"),
		binding(svcregv1.Role_ROLE_REGISTRAR, "shop")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Authorize(p, WriteInstance, "shop"); err != nil {
			b.Fatal(err)
		}
	}
}
