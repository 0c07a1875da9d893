// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/auth"
)

const tokenUsage = `usage:
  svcreg token create --role ROLE [--namespace NS]... [--expires DURATION] [--description TEXT] [--identity URI]
  svcreg token list [--json]
  svcreg token revoke ACCESSOR_OR_TOKEN
  svcreg token whoami
  svcreg token generate          print a new random token (for --bootstrap-token-file)
roles: reader, registrar, admin (in namespaces: a name, "prefix-*" or "*"), operator (cluster-wide)`

// tokenCmd is `svcreg token ...`.
func tokenCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(tokenUsage)
	}
	if args[0] == "generate" {
		fmt.Println(auth.NewSecret())
		return nil
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	conn := addConnFlags(fs)
	role := fs.String("role", "", "reader, registrar, admin or operator")
	var namespaces []string
	fs.Func("namespace", `namespace the role applies in: a name, "prefix-*" or "*" (repeatable, or comma-separated)`, func(v string) error {
		for _, ns := range strings.Split(v, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				namespaces = append(namespaces, ns)
			}
		}
		return nil
	})
	expires := fs.Duration("expires", 0, "how long the token is valid (default: until revoked)")
	description := fs.String("description", "", "what the token is for")
	identity := fs.String("identity", "", "bind the role to a client certificate identity (URI or DNS SAN) instead of making a secret")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	c, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	tokens := svcregv1grpc.NewTokenServiceClient(c.Conn())
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch args[0] {
	case "create":
		r, err := parseRole(*role)
		if err != nil {
			return err
		}
		tok := &svcregv1.Token{Description: *description, Identity: *identity,
			Roles: []*svcregv1.RoleBinding{{Role: r, Namespaces: namespaces}}}
		if *expires > 0 {
			tok.ExpireTime = timestamppb.New(time.Now().Add(*expires))
		}
		return createToken(ctx, tokens, tok)
	case "list":
		resp, err := tokens.ListTokens(ctx, &svcregv1.ListTokensRequest{})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(os.Stdout).Encode(resp.GetTokens())
		}
		return printTokens(resp.GetTokens())
	case "revoke":
		if len(pos) != 1 {
			return errors.New("usage: svcreg token revoke ACCESSOR_OR_TOKEN")
		}
		resp, err := tokens.RevokeToken(ctx, &svcregv1.RevokeTokenRequest{Accessor: pos[0]})
		if err != nil {
			return err
		}
		fmt.Printf("revoked %s\n", resp.GetAccessor())
		return nil
	case "whoami":
		resp, err := tokens.WhoAmI(ctx, &svcregv1.WhoAmIRequest{})
		if err != nil {
			return err
		}
		if !resp.GetAuthEnabled() {
			fmt.Println("auth is off: every request may do anything")
			return nil
		}
		return printTokens([]*svcregv1.Token{resp.GetToken()})
	}
	return errors.New(tokenUsage)
}

// createToken prints the new bearer token alone on stdout
// (TOKEN=$(svcreg token create ...)), or an identity binding's accessor.
func createToken(ctx context.Context, tokens svcregv1grpc.TokenServiceClient, tok *svcregv1.Token) error {
	resp, err := tokens.CreateToken(ctx, &svcregv1.CreateTokenRequest{Token: tok})
	if err != nil {
		return err
	}
	if resp.GetSecret() == "" {
		fmt.Println(resp.GetToken().GetAccessor())
		return nil
	}
	fmt.Println(resp.GetSecret())
	fmt.Fprintf(os.Stderr, "accessor %s\n", resp.GetToken().GetAccessor())
	return nil
}

func parseRole(s string) (svcregv1.Role, error) {
	if r, ok := svcregv1.Role_value["ROLE_"+strings.ToUpper(s)]; ok && r != 0 {
		return svcregv1.Role(r), nil
	}
	return 0, fmt.Errorf("--role %q: want reader, registrar, admin or operator", s)
}

func printTokens(toks []*svcregv1.Token) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESSOR\tROLES\tEXPIRES\tIDENTITY\tDESCRIPTION")
	for _, t := range toks {
		var roles []string
		for _, b := range t.GetRoles() {
			r := strings.ToLower(strings.TrimPrefix(b.GetRole().String(), "ROLE_"))
			if len(b.GetNamespaces()) > 0 {
				r += "@" + strings.Join(b.GetNamespaces(), ",")
			}
			roles = append(roles, r)
		}
		expires := "never"
		if t.GetExpireTime() != nil {
			expires = t.GetExpireTime().AsTime().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.GetAccessor(), strings.Join(roles, " "), expires, t.GetIdentity(), t.GetDescription())
	}
	return tw.Flush()
}
