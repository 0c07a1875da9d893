// Package client is svcreg's Go SDK: a typed client for every registry RPC,
// endpoint watches that resume by themselves, self-registration with a
// lease (Register), and Dial, a grpc.NewClient with the svcreg resolver and
// the ipvs balancer wired in.
package client

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
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
	svcregv1.RegistryServiceClient
	conn *grpc.ClientConn
	addr string
}

// Option configures a Client.
type Option func(*options)

type options struct {
	dial []grpc.DialOption
}

// WithDialOptions passes gRPC dial options through: transport credentials
// (the default is plaintext, as the registry's loopback default), interceptors.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
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
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, o.dial...)
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, err
	}
	return &Client{RegistryServiceClient: svcregv1.NewRegistryServiceClient(conn), conn: conn, addr: addr}, nil
}

// Addr is the registry address.
func (c *Client) Addr() string { return c.addr }

// Conn is the client's connection to the registry.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
