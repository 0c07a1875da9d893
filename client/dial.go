// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package client

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	// The ipvs policy, so that services' schedulers apply.
	_ "github.com/svcreg/svcreg/balancer"
	"github.com/svcreg/svcreg/resolver"
)

// Dial is grpc.NewClient for svcreg targets (svcreg:///web.shop:grpc),
// with the svcreg resolver and the ipvs balancer wired in. Transport
// credentials default to plaintext; pass grpc.WithTransportCredentials to
// change them. Other options pass through.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(defaultResolver),
	}, opts...)
	return grpc.NewClient(target, all...)
}

var defaultResolver = resolver.NewBuilder()

// Dial is the package's Dial with this client's registry: the resolver
// watches endpoints at the client's address with its token and TLS
// settings. target may leave out the registry (svcreg:///web.shop:grpc).
// The options are the channel's own, to the backends (plaintext unless
// given transport credentials).
func (c *Client) Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	c.resolverOnce.Do(func() {
		c.resolver = resolver.NewBuilder(resolver.WithRegistry(c.addr), resolver.WithToken(c.opts.creds.Token),
			resolver.WithTokenFile(c.opts.creds.TokenFile), resolver.WithTLS(c.opts.creds.TLS, c.opts.creds.CAFile),
			resolver.WithDialOptions(c.opts.dial...), resolver.WithMinRevision(c.Revision))
	})
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(c.resolver),
	}, opts...)
	return grpc.NewClient(target, all...)
}
