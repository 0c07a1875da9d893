// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/admission"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/reason"
)

// The interceptor chain every gRPC server of the registry runs (client
// port, the REST gateway's in-process server, peer port), outermost first:
//
//	admit     the client port's fair share: a connection from the health
//	          reserve serves health checks only, and a client's unary
//	          calls in flight are bounded (admission.go)
//	recover   a panic becomes INTERNAL, logged once with its stack; the
//	          server keeps serving
//	errors    domain errors become status (errors.go)
//	log       one debug line per RPC
//	guard     authentication, authorization, audit (auth.go)
//	fields    requests with unknown protobuf fields are refused
//	watches   the watch limits (total, per connection)
type interceptors struct {
	log     *slog.Logger
	guard   gate
	watches *watchLimiter
	// perConn applies the per-connection watch limit (not on the gateway's
	// in-process connection, which carries every REST client).
	perConn bool
	// inFlight bounds each client's unary calls in flight (the client port
	// only; nil elsewhere).
	inFlight *admission.InFlight
}

func (ic *interceptors) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(ic.admitUnary, ic.recoverUnary, unaryErrors, ic.logUnary, ic.guard.unary, unknownFieldsUnary),
		grpc.ChainStreamInterceptor(ic.admitStream, ic.recoverStream, streamErrors, ic.guard.stream, unknownFieldsStream, ic.limitWatches),
	}
}

func (ic *interceptors) recovered(method string, p any) error {
	ic.log.Error("panic serving an RPC: answered INTERNAL, still serving", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return apierror.WithDetails(codes.Internal, fmt.Sprintf("internal error serving %s; the server logged it", method), reason.Internal, nil)
}

func (ic *interceptors) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, ic.recovered(info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

func (ic *interceptors) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = ic.recovered(info.FullMethod, p)
		}
	}()
	return handler(srv, ss)
}

func unaryErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, apierror.ToStatus(err)
}

func streamErrors(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return apierror.ToStatus(handler(srv, ss))
}

func (ic *interceptors) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !ic.log.Enabled(ctx, slog.LevelDebug) {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	ic.log.LogAttrs(ctx, slog.LevelDebug, "rpc", slog.String("method", info.FullMethod),
		slog.Duration("took", time.Since(start)), slog.Any("err", apierror.ToStatus(err)))
	return resp, err
}

// Unknown fields are refused, not stored: a field this server does not
// know would otherwise be kept, replicated and returned (a 1 MB unknown
// field in every instance makes every list huge).
func unknownFieldsUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m, ok := req.(proto.Message); ok {
		if err := checkUnknown(m); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

func unknownFieldsStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, checkedStream{ss})
}

type checkedStream struct{ grpc.ServerStream }

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if msg, ok := m.(proto.Message); ok {
		return apierror.ToStatus(checkUnknown(msg))
	}
	return nil
}

// checkUnknown fails with INVALID_ARGUMENT naming the first unknown field
// (its path and number) of m or a message inside it.
func checkUnknown(m proto.Message) error {
	if path, num, ok := findUnknown(m.ProtoReflect(), ""); ok {
		return validation.ErrorList{validation.Invalid(validation.Path(path), fmt.Sprintf("field number %d", num),
			"unknown field: this server does not know it (a newer client?); it is refused rather than stored")}
	}
	return nil
}

func findUnknown(m protoreflect.Message, path string) (string, protoreflect.FieldNumber, bool) {
	if raw := m.GetUnknown(); len(raw) > 0 {
		num, _, _ := protowire.ConsumeTag(raw)
		name := string(m.Descriptor().Name())
		if path != "" {
			name = path
		}
		return name, num, true
	}
	var (
		foundPath string
		foundNum  protoreflect.FieldNumber
		found     bool
	)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		child := joinPath(path, string(fd.Name()))
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				foundPath, foundNum, found = findUnknown(l.Get(i).Message(), fmt.Sprintf("%s[%d]", child, i))
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					foundPath, foundNum, found = findUnknown(mv.Message(), fmt.Sprintf("%s[%q]", child, k.String()))
					return !found
				})
			}
		default:
			foundPath, foundNum, found = findUnknown(v.Message(), child)
		}
		return !found
	})
	return foundPath, foundNum, found
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// watchLimiter bounds the watch streams open at once, in all and per
// connection.
type watchLimiter struct {
	total, perConn int
	mu             sync.Mutex
	open           int
	byConn         map[string]int
}

func newWatchLimiter(l Limits) *watchLimiter {
	return &watchLimiter{total: l.Watches, perConn: l.WatchesPerConn, byConn: map[string]int{}}
}

// isWatch: the registry's watches and xDS streams, which share the
// watch limits.
func isWatch(method string) bool {
	return strings.HasPrefix(method, "/"+svcregv1grpc.RegistryService_ServiceDesc.ServiceName+"/Watch") ||
		method == discoveryv3.AggregatedDiscoveryService_StreamAggregatedResources_FullMethodName
}

func (ic *interceptors) limitWatches(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !isWatch(info.FullMethod) {
		return handler(srv, ss)
	}
	conn := ""
	if p, ok := peer.FromContext(ss.Context()); ok && ic.perConn && p.Addr != nil {
		conn = p.Addr.String()
	}
	release, err := ic.watches.acquire(conn)
	if err != nil {
		return err
	}
	defer release()
	return handler(srv, ss)
}

func (l *watchLimiter) acquire(conn string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.total:
		return nil, fmt.Errorf("%w: %d watches are open, the most this server takes (--max-watches)", apierror.ErrLimit, l.total)
	case conn != "" && l.byConn[conn] >= l.perConn:
		return nil, fmt.Errorf("%w: this connection has %d watches open, the most one connection may (--max-watches-per-conn)", apierror.ErrLimit, l.perConn)
	}
	l.open++
	if conn != "" {
		l.byConn[conn]++
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.open--
		if conn != "" {
			if l.byConn[conn]--; l.byConn[conn] == 0 {
				delete(l.byConn, conn)
			}
		}
	}, nil
}
