// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"

	"github.com/svcreg/svcreg/internal/admission"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/reason"
)

// Fair admission on the client and REST ports (internal/admission), before
// anything is authenticated: a client address holds at most
// --max-connections-per-client connections and --max-requests-per-client
// requests in flight, and healthReserve connections past --max-connections
// serve health checks only, so /healthz, /readyz and grpc.health.v1
// answer while the API is saturated.

// healthReserve is how many connections past the bound each port keeps
// for health checks.
const healthReserve = 64

// listen binds a TCP listener with the port's admission.
func (s *Server) listen(what, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return admission.NewListener(lis, admission.Config{Name: what, Total: s.cfg.Limits.Connections,
		PerClient: s.cfg.Limits.ConnectionsPerClient, Reserve: healthReserve, Logger: s.log,
		TotalFlag: "--max-connections", PerClientFlag: "--max-connections-per-client"}), nil
}

func isHealthMethod(method string) bool { return strings.HasPrefix(method, "/grpc.health.v1.Health/") }

func errReservedConn() error {
	return apierror.WithDetails(codes.ResourceExhausted, "the server holds --max-connections connections: this connection serves health checks only; retry on a new one",
		reason.LimitExceeded, nil)
}

func errTooManyInFlight() error {
	return apierror.WithDetails(codes.ResourceExhausted, "this client has --max-requests-per-client requests in flight; retry once some have finished",
		reason.LimitExceeded, nil)
}

func (ic *interceptors) admitUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if ic.inFlight == nil || isHealthMethod(info.FullMethod) {
		return handler(ctx, req)
	}
	p, _ := peer.FromContext(ctx)
	var addr net.Addr
	if p != nil {
		addr = p.Addr
	}
	if admission.ReservedAddr(addr) {
		return nil, errReservedConn()
	}
	client := admission.Client(addr)
	if !ic.inFlight.Acquire(client) {
		return nil, errTooManyInFlight()
	}
	defer ic.inFlight.Release(client)
	return handler(ctx, req)
}

func (ic *interceptors) admitStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if ic.inFlight != nil && !isHealthMethod(info.FullMethod) {
		if p, ok := peer.FromContext(ss.Context()); ok && admission.ReservedAddr(p.Addr) {
			return errReservedConn()
		}
	}
	return handler(srv, ss) // streams (watches) have their own bounds: --max-watches
}
