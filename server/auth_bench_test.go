// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
)

// BenchmarkGuard is what the guard adds to one unary RPC: with a token
// (look the secret's hash up, check expiry, authorize, put the access in
// the context) and with auth off, around a handler that does nothing.
func BenchmarkGuard(b *testing.B) {
	as := startAuthServer(b, Config{})
	req := &svcregv1.GetServiceRequest{Namespace: "own", Name: "web"}
	info := &grpc.UnaryServerInfo{FullMethod: svcregv1grpc.RegistryService_GetService_FullMethodName}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	for _, tt := range []struct {
		name    string
		enabled bool
	}{{"token", true}, {"auth off", false}} {
		b.Run(tt.name, func(b *testing.B) {
			g := gate{&guard{enabled: tt.enabled, store: as.store, clock: as.cfg.Clock, log: as.log, sessions: as.guard.sessions}, portClient}
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+as.bearer["reader"]))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.unary(ctx, req, info, handler); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
