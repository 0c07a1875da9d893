// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package apierror is the one table from domain errors to gRPC status
// (etcd's v3rpc/util.go): the RPC handlers and the packages below them
// return domain errors, and the interceptors and the REST gateway convert
// them here, each with the reason clients match (package reason).
package apierror

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/internal/watch"
	"github.com/svcreg/svcreg/reason"
)

// sentinels is the table; the first match wins.
var sentinels = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{auth.ErrUnauthenticated, codes.Unauthenticated, reason.Unauthenticated},
	{auth.ErrPermissionDenied, codes.PermissionDenied, reason.PermissionDenied},
	{store.ErrNotOwner, codes.PermissionDenied, reason.NotOwner},
	{store.ErrNotFound, codes.NotFound, reason.NotFound},
	{store.ErrAlreadyExists, codes.AlreadyExists, reason.AlreadyExists},
	{store.ErrConflict, codes.Aborted, reason.EtagMismatch},
	{store.ErrRangeFull, codes.ResourceExhausted, reason.RangeFull},
	{store.ErrFailedPrecondition, codes.FailedPrecondition, reason.FailedPrecondition},
	{store.ErrInvalidSnapshot, codes.InvalidArgument, reason.InvalidSnapshot},
	{watch.ErrTooOld, codes.OutOfRange, reason.ResourceVersionTooOld},
	{watch.ErrFuture, codes.InvalidArgument, reason.ResourceVersionAhead},
	{watch.ErrOverflow, codes.ResourceExhausted, reason.WatcherTooSlow},
	{watch.ErrClosed, codes.Unavailable, reason.ShuttingDown},
	{cluster.ErrNotReady, codes.Unavailable, reason.NotReady},
	{cluster.ErrNotLeader, codes.Unavailable, reason.NotLeader},
	{cluster.ErrNoLeader, codes.Unavailable, reason.NoLeader},
	{cluster.ErrDiskFull, codes.ResourceExhausted, reason.DiskFull},
	{cluster.ErrTooLarge, codes.ResourceExhausted, reason.LimitExceeded},
	{cluster.ErrUnknownServer, codes.NotFound, reason.NotFound},
	{cluster.ErrNodeIDInUse, codes.AlreadyExists, reason.NodeIDInUse},
	{cluster.ErrMembership, codes.Unavailable, reason.ClusterChange},
	{ErrBehind, codes.Unavailable, reason.Behind},
	{ErrLimit, codes.ResourceExhausted, reason.LimitExceeded},
	{ErrShuttingDown, codes.Unavailable, reason.ShuttingDown},
}

// Errors of the server's own.
var (
	// ErrBehind: this server did not reach a read's min_revision in time.
	ErrBehind = errors.New("this server is behind")
	// ErrLimit: a server limit was reached (the message names it).
	ErrLimit = errors.New("limit reached")
	// ErrShuttingDown: the server is stopping.
	ErrShuttingDown = errors.New("the registry is shutting down")
)

// ToStatus converts a domain error to a gRPC status. It is the only place
// that does: status errors (from a forwarded call) pass as they are.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	var list validation.ErrorList
	if errors.As(err, &list) {
		return WithDetails(codes.InvalidArgument, list.Error(), reason.FieldInvalid, badRequest(list))
	}
	for _, m := range sentinels {
		if errors.Is(err, m.err) {
			return WithDetails(m.code, err.Error(), m.reason, nil)
		}
	}
	return WithDetails(codes.Internal, err.Error(), reason.Internal, nil)
}

// badRequest lists the field violations, the first validation.MaxErrors
// of them (the message counts the rest).
func badRequest(list validation.ErrorList) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	for _, e := range list[:min(len(list), validation.MaxErrors)] {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: string(e.Field), Description: e.Error(), Reason: reasonOf(e.Type),
		})
	}
	return br
}

// reasonOf names a field error type in UPPER_SNAKE_CASE for
// BadRequest.FieldViolation.reason.
func reasonOf(t validation.ErrorType) string {
	switch t {
	case validation.ErrorTypeRequired:
		return "REQUIRED"
	case validation.ErrorTypeDuplicate:
		return "DUPLICATE"
	case validation.ErrorTypeNotSupported:
		return "NOT_SUPPORTED"
	case validation.ErrorTypeForbidden:
		return "FORBIDDEN"
	case validation.ErrorTypeTooLong:
		return "TOO_LONG"
	case validation.ErrorTypeTooMany:
		return "TOO_MANY"
	}
	return "INVALID"
}

// WithDetails is a status with the ErrorInfo of its reason and, for
// invalid fields, their BadRequest.
func WithDetails(code codes.Code, msg, why string, br *errdetails.BadRequest) error {
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: why, Domain: reason.Domain}}
	if br != nil {
		details = append(details, br)
	}
	if withInfo, err := st.WithDetails(details...); err == nil {
		st = withInfo
	}
	return st.Err()
}

// IsNotFound reports whether err is the store's NotFound.
func IsNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
