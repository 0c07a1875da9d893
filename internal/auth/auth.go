// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package auth decides who may do what (docs/security.md): a principal
// (the token a request carries, or the identity of its client
// certificate) holds role bindings, and Authorize is the one place that
// weighs them against an action in a namespace. gRPC and REST requests
// reach it through the same interceptor; nothing else decides.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

// Errors, converted to status in the server's one table.
var (
	// ErrUnauthenticated: no credential, or one the registry does not
	// know, or one revoked or expired (UNAUTHENTICATED, REST 401).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the credential does not allow the request
	// (PERMISSION_DENIED, REST 403).
	ErrPermissionDenied = errors.New("permission denied")
)

// Action is what a request does.
type Action uint8

// The actions, from the least to the most powerful.
const (
	// Read: get, list, watch, resolve, read the environment.
	Read Action = iota + 1
	// WriteInstance: create, update, renew, delete instances.
	WriteInstance
	// WriteService: create, update, delete services; write endpoints.
	WriteService
	// Operate: the cluster (peers, leadership, snapshots) and tokens.
	Operate
)

func (a Action) String() string {
	switch a {
	case Read:
		return "read"
	case WriteInstance:
		return "write instances"
	case WriteService:
		return "write services"
	case Operate:
		return "operate the cluster"
	}
	return "do nothing"
}

// Principal is who a request comes from.
type Principal struct {
	// Accessor names the token (or identity binding); "" with auth off.
	Accessor string
	// Roles are its bindings.
	Roles []*svcregv1.RoleBinding
	// Expires is when the credential stops being valid (zero: never).
	Expires time.Time
	// Everything is allowed: auth is off (a loopback quick start), or the
	// request came over the peer port from a server of the cluster, which
	// checked it already.
	Everything bool
}

// FromToken is the principal of a stored token.
func FromToken(t *svcregv1.Token) *Principal {
	p := &Principal{Accessor: t.GetAccessor(), Roles: t.GetRoles()}
	if t.GetExpireTime() != nil {
		p.Expires = t.GetExpireTime().AsTime()
	}
	return p
}

// Anyone is the principal of every request when auth is off.
var Anyone = &Principal{Everything: true}

// Grant is what Authorize allows.
type Grant struct {
	// OwnOnly: the action applies only to the instances this principal
	// owns (a registrar's writes).
	OwnOnly bool
}

// Authorize decides whether p may do a in namespace ns (meta.AllNamespaces:
// in some namespace; a list or watch across namespaces then shows only
// what CanRead allows).
func Authorize(p *Principal, a Action, ns string) (Grant, error) {
	if p == nil {
		return Grant{}, fmt.Errorf("%w: no credential", ErrUnauthenticated)
	}
	if p.Everything {
		return Grant{}, nil
	}
	best := Grant{OwnOnly: true}
	allowed := false
	for _, b := range p.Roles {
		g, ok := grants(b.GetRole(), a)
		if !ok || !bound(b, ns) {
			continue
		}
		allowed = true
		if !g.OwnOnly {
			best = g
		}
	}
	if !allowed {
		where := "namespace " + ns
		if ns == meta.AllNamespaces {
			where = "any namespace"
		}
		return Grant{}, fmt.Errorf("%w: token %s may not %s in %s", ErrPermissionDenied, p.Accessor, a, where)
	}
	return best, nil
}

// CanRead reports whether p may read namespace ns.
func CanRead(p *Principal, ns string) bool {
	_, err := Authorize(p, Read, ns)
	return err == nil
}

// grants is what a role allows of an action.
func grants(r svcregv1.Role, a Action) (Grant, bool) {
	switch r {
	case svcregv1.Role_ROLE_READER:
		return Grant{}, a == Read
	case svcregv1.Role_ROLE_REGISTRAR:
		return Grant{OwnOnly: a == WriteInstance}, a == Read || a == WriteInstance
	case svcregv1.Role_ROLE_ADMIN:
		return Grant{}, a != Operate
	case svcregv1.Role_ROLE_OPERATOR:
		return Grant{}, true
	}
	return Grant{}, false
}

// bound reports whether a binding covers namespace ns.
func bound(b *svcregv1.RoleBinding, ns string) bool {
	if b.GetRole() == svcregv1.Role_ROLE_OPERATOR {
		return true // cluster-wide
	}
	for _, pattern := range b.GetNamespaces() {
		if ns == meta.AllNamespaces || Matches(pattern, ns) {
			return true
		}
	}
	return false
}

// Matches reports whether a namespace pattern (a name, "prefix-*", or
// "*") matches ns.
func Matches(pattern, ns string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(ns, prefix)
	}
	return pattern == ns
}

// ValidPattern reports whether a namespace pattern is well formed: a
// DNS-1123 label, optionally cut short by a trailing '*'.
func ValidPattern(pattern string) bool {
	name, wild := strings.CutSuffix(pattern, "*")
	if strings.Contains(name, "*") || len(pattern) > 63 {
		return false
	}
	if wild && name == "" {
		return true
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && (wild || i < len(name)-1)) {
			return false
		}
	}
	return name != ""
}

// SecretPrefix begins every bearer token the registry makes, so that a
// leaked one is easy to find (secret scanners) and RevokeToken can tell a
// secret from an accessor.
const SecretPrefix = "svcr_"

// NewSecret returns a new bearer token: 32 random bytes, base64url,
// behind SecretPrefix.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidAccessor reports whether s can be an accessor: 1 to 64 lower-case
// letters, digits and '-' (the ids NewAccessor makes, and "bootstrap").
func ValidAccessor(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidIdentity reports whether s can name a certificate identity: 1 to
// 1024 printable ASCII characters without spaces.
func ValidIdentity(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// NewAccessor returns a new accessor id.
func NewAccessor() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Hash is the SHA-256 of a secret: what the store keeps.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// HashKey is Hash as an index key.
func HashKey(secret string) string { return hex.EncodeToString(Hash(secret)) }

// Equal compares a secret's hash with a stored one in constant time.
func Equal(secret string, stored []byte) bool {
	return subtle.ConstantTimeCompare(Hash(secret), stored) == 1
}

// BearerToken extracts the token of an `authorization: Bearer X` value.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
