// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/svcreg/svcreg/internal/gateway"
)

// The REST gateway calls the registry through a gRPC server of its own, in
// this process, over an in-memory connection (bufconn): the same services
// and the same interceptors as the gRPC port, but not the gRPC port's
// per-connection stream limit, which one shared connection would hit at
// 1,024 open REST watches. REST clients are bounded by the HTTP listener's
// connection limit and the watch limit instead.
type restGateway struct {
	grpc *grpc.Server
	lis  *bufconn.Listener
	conn *grpc.ClientConn
}

const bufconnSize = 1 << 20

func newRESTGateway(register func(*grpc.Server), ic *interceptors, maxStreams uint32) (*restGateway, error) {
	g := &restGateway{lis: bufconn.Listen(bufconnSize)}
	g.grpc = grpc.NewServer(append(ic.serverOptions(),
		grpc.MaxRecvMsgSize(gateway.MaxRequestBytes),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.ForceServerCodecV2(newCodec()))...)
	register(g.grpc)
	conn, err := grpc.NewClient("passthrough:///rest-gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return g.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	g.conn = conn
	go g.grpc.Serve(g.lis)
	return g, nil
}

func (g *restGateway) close() {
	g.conn.Close()
	g.grpc.Stop()
}
