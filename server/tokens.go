// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"strings"

	"google.golang.org/protobuf/proto"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/validation"
)

// tokens is svcreg.v1.TokenService. Tokens are replicated state: created
// and revoked as commands; read from this server's store.
type tokens struct {
	svcregv1grpc.UnimplementedTokenServiceServer
	router  *router
	writer  *writer
	enabled bool
}

func (t *tokens) CreateToken(ctx context.Context, req *svcregv1.CreateTokenRequest) (*svcregv1.CreateTokenResponse, error) {
	in := req.GetToken()
	if in == nil {
		return nil, validation.ErrorList{validation.Required("token", "the roles to grant")}
	}
	tok := proto.Clone(in).(*svcregv1.Token)
	tok.Accessor, tok.CreateTime = auth.NewAccessor(), nil // output only
	var errs validation.ErrorList
	if exp := tok.GetExpireTime(); exp != nil && !exp.AsTime().After(t.writer.clock.Now()) {
		errs = append(errs, validation.Invalid("token.expire_time", exp.AsTime(), "must be in the future"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	stored := &storev1.StoredToken{Token: tok}
	secret := ""
	if tok.GetIdentity() == "" {
		secret = auth.NewSecret()
		stored.SecretSha256 = auth.Hash(secret)
	}
	res, err := t.writer.apply(ctx, func(c *storev1.Command) { c.Op = &storev1.Command_CreateToken{CreateToken: stored} })
	if err != nil {
		return nil, err
	}
	// A client uses a new token at once, often on this server: answer
	// once this server knows it.
	if err := t.router.caughtUpTo(ctx, res.Revision); err != nil {
		return nil, err
	}
	return &svcregv1.CreateTokenResponse{Token: res.Token, Secret: secret}, nil
}

func (t *tokens) ListTokens(context.Context, *svcregv1.ListTokensRequest) (*svcregv1.ListTokensResponse, error) {
	if err := t.router.node.CheckCaughtUp(); err != nil {
		return nil, err
	}
	stored, err := t.router.store.Read().Tokens()
	if err != nil {
		return nil, err
	}
	resp := &svcregv1.ListTokensResponse{}
	for _, s := range stored {
		resp.Tokens = append(resp.Tokens, s.GetToken())
	}
	return resp, nil
}

func (t *tokens) RevokeToken(ctx context.Context, req *svcregv1.RevokeTokenRequest) (*svcregv1.RevokeTokenResponse, error) {
	accessor := strings.TrimSpace(req.GetAccessor())
	if accessor == "" {
		return nil, validation.ErrorList{validation.Required("accessor", "a token's accessor, or the token itself")}
	}
	switch {
	case strings.HasPrefix(accessor, auth.SecretPrefix):
		stored, err := t.router.store.Read().TokenByHash(auth.HashKey(accessor))
		if err != nil {
			return nil, err
		}
		accessor = stored.GetToken().GetAccessor()
	case !auth.ValidAccessor(accessor):
		return nil, validation.ErrorList{validation.Invalid("accessor", accessor, "must be a token's accessor (1 to 64 lower-case letters, digits and '-') or a token")}
	}
	res, err := t.writer.apply(ctx, func(c *storev1.Command) {
		c.Op = &storev1.Command_DeleteToken{DeleteToken: &storev1.DeleteToken{Accessor: accessor}}
	})
	if err != nil {
		return nil, err
	}
	if err := t.router.caughtUpTo(ctx, res.Revision); err != nil {
		return nil, err
	}
	return &svcregv1.RevokeTokenResponse{Accessor: accessor}, nil
}

func (t *tokens) WhoAmI(ctx context.Context, _ *svcregv1.WhoAmIRequest) (*svcregv1.WhoAmIResponse, error) {
	p := accessOf(ctx).principal
	if p.Everything {
		return &svcregv1.WhoAmIResponse{AuthEnabled: t.enabled}, nil
	}
	stored, err := t.router.store.Read().Token(p.Accessor)
	if err != nil {
		return nil, err
	}
	return &svcregv1.WhoAmIResponse{AuthEnabled: true, Token: stored.GetToken()}, nil
}
