// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package client is svcreg's Go SDK: a typed client for every registry RPC,
// endpoint watches that resume by themselves, self-registration with a
// lease (Register), and Dial, a grpc.NewClient with the svcreg resolver and
// the ipvs balancer wired in.
package client

import (
	"context"
	"sync/atomic"
	"time"

	"crypto/tls"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	grpcresolver "google.golang.org/grpc/resolver"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
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

	revision     atomic.Int64 // the newest revision an answer named (Revision)
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
	// A registry that is down comes back within seconds (a restart, a
	// leader change): reconnect at most 5 s apart, not gRPC's default 2
	// minutes, so a backend started before its registry registers soon
	// after the registry is up. WithDialOptions can say otherwise.
	dial = append(dial, grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 5 * time.Second,
		Backoff: backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second}}))
	c := &Client{addr: addr, opts: o}
	dial = append(dial, grpc.WithChainUnaryInterceptor(c.recordRevision))
	conn, err := grpc.NewClient(addr, append(dial, o.dial...)...)
	if err != nil {
		return nil, err
	}
	c.RegistryServiceClient, c.conn = svcregv1grpc.NewRegistryServiceClient(conn), conn
	return c, nil
}

// Revision is the newest registry revision this client has seen in an
// answer: its own last write's, or a read's. The endpoint watches of
// Client.Dial start from a snapshot that holds it (read-your-writes on
// any server).
func (c *Client) Revision() int64 { return c.revision.Load() }

// recordRevision keeps the newest revision an answer names.
func (c *Client) recordRevision(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil {
		return err
	}
	if rev := revisionOf(reply); rev > 0 {
		for {
			cur := c.revision.Load()
			if rev <= cur || c.revision.CompareAndSwap(cur, rev) {
				break
			}
		}
	}
	return nil
}

// revisionOf is the revision an answer names: its own (a delete's, a
// list's), or its object's.
func revisionOf(reply any) int64 {
	type versioned interface{ GetResourceVersion() int64 }
	switch r := reply.(type) {
	case interface{ GetInstance() *svcregv1.Instance }:
		return r.GetInstance().GetResourceVersion()
	case interface{ GetService() *svcregv1.Service }:
		return r.GetService().GetResourceVersion()
	case versioned:
		return r.GetResourceVersion()
	}
	return 0
}

// Addr is the registry address.
func (c *Client) Addr() string { return c.addr }

// Conn is the client's connection to the registry.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
