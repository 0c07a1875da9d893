// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/validation"
)

// Access tokens are replicated state, like services: created and deleted
// by commands, so every server authenticates the same tokens. The store
// keeps the SHA-256 of a secret, never the secret.

// prepareToken is a token creation's stateless check.
func prepareToken(t *storev1.StoredToken) validation.ErrorList {
	tok := t.GetToken()
	var errs validation.ErrorList
	if !auth.ValidAccessor(tok.GetAccessor()) {
		errs = append(errs, validation.Invalid("token.accessor", tok.GetAccessor(), "must be 1 to 64 lower-case letters, digits and '-' (the proposer sets it)"))
	}
	if id := tok.GetIdentity(); id != "" && !auth.ValidIdentity(id) {
		errs = append(errs, validation.Invalid("token.identity", id, "must be a certificate's URI or DNS name: 1 to 1024 printable characters, no spaces"))
	}
	if (len(t.GetSecretSha256()) == 0) == (tok.GetIdentity() == "") {
		errs = append(errs, validation.Invalid("token.identity", tok.GetIdentity(), "a token has either a secret or an identity, not both"))
	}
	if len(tok.GetRoles()) == 0 {
		errs = append(errs, validation.Required("token.roles", "at least one role"))
	}
	for i, b := range tok.GetRoles() {
		f := validation.Path("token.roles").Index(i)
		if _, ok := svcregv1.Role_name[int32(b.GetRole())]; !ok || b.GetRole() == svcregv1.Role_ROLE_UNSPECIFIED {
			errs = append(errs, validation.NotSupported(f.Child("role"), b.GetRole().String(), enumNames(svcregv1.Role_name)))
		}
		if b.GetRole() != svcregv1.Role_ROLE_OPERATOR && len(b.GetNamespaces()) == 0 {
			errs = append(errs, validation.Required(f.Child("namespaces"), `a name, a prefix such as "team-*", or "*"`))
		}
		for j, ns := range b.GetNamespaces() {
			if !auth.ValidPattern(ns) {
				errs = append(errs, validation.Invalid(f.Child("namespaces").Index(j), ns, `must be a namespace, a prefix ending in "*", or "*"`))
			}
		}
	}
	if len(tok.GetDescription()) > 256 {
		errs = append(errs, validation.TooLong("token.description", 256))
	}
	return errs
}

func createTokenTxn(ctx *applyCtx, t *storev1.StoredToken) (*Result, error) {
	if err := tokenFreeTxn(ctx.txn.Txn, t); err != nil {
		return nil, err
	}
	t = proto.Clone(t).(*storev1.StoredToken)
	t.Token.CreateTime = timestamppb.New(ctx.time)
	if err := ctx.txn.Insert(tableIndex, &indexEntry{Key: tokensKey, Value: 1}); err != nil {
		return nil, err
	}
	ctx.txn.tokens = true
	return &Result{Token: t.GetToken()}, ctx.txn.Insert(tableTokens, t)
}

// tokenFreeTxn fails when the accessor, the secret or the identity is
// taken.
func tokenFreeTxn(txn *memdb.Txn, t *storev1.StoredToken) error {
	for _, key := range []struct{ index, value string }{
		{indexID, t.GetToken().GetAccessor()},
		{indexHash, hexOrEmpty(t.GetSecretSha256())},
		{indexIdentity, t.GetToken().GetIdentity()},
	} {
		if key.value == "" {
			continue
		}
		obj, err := txn.First(tableTokens, key.index, key.value)
		if err != nil {
			return err
		}
		if obj != nil {
			return &Error{ErrAlreadyExists, fmt.Sprintf("a token with that %s exists", key.index)}
		}
	}
	return nil
}

func deleteTokenTxn(ctx *applyCtx, req *storev1.DeleteToken) (*Result, error) {
	t, err := tokenTxn(ctx.txn.Txn, indexID, req.GetAccessor())
	if err != nil {
		return nil, err
	}
	ctx.txn.tokens = true
	return &Result{}, ctx.txn.Delete(tableTokens, t)
}

func tokenTxn(txn *memdb.Txn, index, key string) (*storev1.StoredToken, error) {
	obj, err := txn.First(tableTokens, index, key)
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, &Error{ErrNotFound, "no such token"}
	}
	return obj.(*storev1.StoredToken), nil
}

// Token returns a token by accessor.
func (r *ReadTxn) Token(accessor string) (*storev1.StoredToken, error) {
	return tokenTxn(r.txn, indexID, accessor)
}

// TokenByHash returns the token whose secret hashes to hashKey (hex).
func (r *ReadTxn) TokenByHash(hashKey string) (*storev1.StoredToken, error) {
	return tokenTxn(r.txn, indexHash, hashKey)
}

// TokenByIdentity returns the identity binding of a certificate identity.
func (r *ReadTxn) TokenByIdentity(identity string) (*storev1.StoredToken, error) {
	return tokenTxn(r.txn, indexIdentity, identity)
}

// TokensBootstrapped reports whether a token was ever created.
func (r *ReadTxn) TokensBootstrapped() bool {
	obj, err := r.txn.First(tableIndex, indexID, tokensKey)
	return err == nil && obj != nil
}

// Tokens returns every token in accessor order.
func (r *ReadTxn) Tokens() ([]*storev1.StoredToken, error) {
	it, err := r.txn.Get(tableTokens, indexID+"_prefix", "")
	if err != nil {
		return nil, err
	}
	var out []*storev1.StoredToken
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*storev1.StoredToken))
	}
	return out, nil
}

func hexOrEmpty(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return fmt.Sprintf("%x", b)
}
