// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package client is svcreg's Go SDK: a typed client for every registry RPC,
// endpoint watches that resume by themselves, self-registration with a
// lease (Register), and Dial, a grpc.NewClient with the svcreg resolver and
// the ipvs balancer wired in.
package client

import (
	"context"

	"crypto/tls"
	"sync"

	"google.golang.org/grpc"
	grpcresolver "google.golang.org/grpc/resolver"

	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clientauth"
	"github.com/svcreg/svcreg/internal/meta"
)

// DefaultAddr is the registry address when none is given and SVCREG_ADDR is
// unset.
const DefaultAddr = meta.DefaultRegistryAddr

// RegistryAddr resolves a registry address: addr, else $SVCREG_ADDR, else
// DefaultAddr.
func RegistryAddr(addr string) string { return meta.RegistryAddr(addr) }

// Client talks to a registry. It embeds the generated client, so every RPC
// (CreateService, ListEndpoints, Watch, ...) is a method.
type Client struct {
	svcregv1grpc.RegistryServiceClient
	conn *grpc.ClientConn
	addr string
	opts options

	resolverOnce sync.Once
	resolver     grpcresolver.Builder // Dial's, on first use
}

// Option configures a Client.
type Option func(*options)

type options struct {
	dial  []grpc.DialOption
	creds clientauth.Config
}

// WithDialOptions passes gRPC dial options through (interceptors, or
// transport credentials of your own, which replace WithTLS's).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// WithToken sends a bearer token on every call (`authorization: Bearer
// ...`). The default is $SVCREG_TOKEN, else the file $SVCREG_TOKEN_FILE
// names, else none (a loopback registry without auth needs none).
func WithToken(token string) Option {
	return func(o *options) { o.creds.Token = token }
}

// WithTokenFile reads the bearer token from the first line of a file, and
// again whenever the file changes (a rotated token needs no restart).
func WithTokenFile(path string) Option {
	return func(o *options) { o.creds.TokenFile = path }
}

// WithTLS dials over TLS: conf for client certificates (mutual TLS) and
// the server name, caFile for the PEM CA the registry's certificate must
// chain to; either may be empty. The default is $SVCREG_CACERT, else
// plaintext. A token is never sent in plaintext to a registry that is not
// on loopback: New fails instead.
func WithTLS(conf *tls.Config, caFile string) Option {
	return func(o *options) { o.creds.TLS, o.creds.CAFile = conf, caFile }
}

// New returns a client of the registry at addr (see RegistryAddr). It does
// no network I/O: the connection is made on first use and remade after a
// registry restart.
func New(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	addr = RegistryAddr(addr)
	dial, err := o.creds.DialOptions(addr)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, append(dial, o.dial...)...)
	if err != nil {
		return nil, err
	}
	return &Client{RegistryServiceClient: svcregv1grpc.NewRegistryServiceClient(conn), conn: conn, addr: addr, opts: o}, nil
}

// Addr is the registry address.
func (c *Client) Addr() string { return c.addr }

// Conn is the client's connection to the registry.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
