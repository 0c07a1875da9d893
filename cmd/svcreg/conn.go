// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"flag"

	"github.com/svcreg/svcreg/client"
)

// connFlags are how every command reaches a registry: its address, and
// the credentials (each also from the environment: SVCREG_ADDR,
// SVCREG_TOKEN, SVCREG_TOKEN_FILE, SVCREG_CACERT).
type connFlags struct {
	addr, token, tokenFile, caCert *string
}

func addConnFlags(fs *flag.FlagSet) connFlags { return addConnFlagsAs(fs, "addr") }

// addConnFlagsAs is addConnFlags with the address flag named name.
func addConnFlagsAs(fs *flag.FlagSet, name string) connFlags {
	return connFlags{
		addr:      fs.String(name, "", "registry gRPC address (default $SVCREG_ADDR or 127.0.0.1:7400)"),
		token:     fs.String("token", "", "bearer token (default $SVCREG_TOKEN)"),
		tokenFile: fs.String("token-file", "", "file holding the bearer token (default $SVCREG_TOKEN_FILE)"),
		caCert:    fs.String("cacert", "", "PEM CA the registry's certificate chains to; turns TLS on (default $SVCREG_CACERT)"),
	}
}

// options are the client options the flags ask for (unset ones fall back
// to the environment inside the client).
func (f connFlags) options() []client.Option {
	var opts []client.Option
	if *f.token != "" {
		opts = append(opts, client.WithToken(*f.token))
	}
	if *f.tokenFile != "" {
		opts = append(opts, client.WithTokenFile(*f.tokenFile))
	}
	if *f.caCert != "" {
		opts = append(opts, client.WithTLS(nil, *f.caCert))
	}
	return opts
}

func (f connFlags) dial(ctx context.Context) (*client.Client, error) {
	return client.New(ctx, *f.addr, f.options()...)
}
