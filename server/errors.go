package server

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/internal/watch"
)

// ErrorDomain is the ErrorInfo domain of svcreg's errors (AIP-193).
const ErrorDomain = "svcreg.io"

// Error reasons, machine-readable in google.rpc.ErrorInfo.
const (
	ReasonInvalid       = "FIELD_INVALID"
	ReasonNotFound      = "NOT_FOUND"
	ReasonAlreadyExists = "ALREADY_EXISTS"
	ReasonConflict      = "ETAG_MISMATCH"
	ReasonRangeFull     = "RANGE_FULL"
	ReasonPrecondition  = "FAILED_PRECONDITION"
	// ReasonTooOld: a watch asked for a revision older than the history
	// (Kubernetes' 410 Gone): list again, then watch from the list.
	ReasonTooOld = "RESOURCE_VERSION_TOO_OLD"
	// ReasonWatcherTooSlow: the watcher fell behind and was cut off: resume
	// from the last revision received.
	ReasonWatcherTooSlow = "WATCHER_TOO_SLOW"
)

// toStatus converts a domain error to a gRPC status. It is the only place
// that does (etcd's v3rpc/util.go): handlers return domain errors and the
// interceptors call this.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, watch.ErrClosed) {
		return status.Error(codes.Unavailable, "the registry is shutting down; resume the watch elsewhere or later")
	}
	if errors.Is(err, watch.ErrFuture) {
		return toStatus(validation.ErrorList{validation.Invalid("resource_version", nil, err.Error())})
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	var list validation.ErrorList
	if errors.As(err, &list) {
		br := &errdetails.BadRequest{}
		for _, e := range list {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: string(e.Field), Description: e.Error(), Reason: reasonOf(e.Type),
			})
		}
		return withDetails(codes.InvalidArgument, list.Error(), ReasonInvalid, br)
	}
	for _, m := range []struct {
		kind   error
		code   codes.Code
		reason string
	}{
		{store.ErrNotFound, codes.NotFound, ReasonNotFound},
		{store.ErrAlreadyExists, codes.AlreadyExists, ReasonAlreadyExists},
		{store.ErrConflict, codes.Aborted, ReasonConflict},
		{store.ErrRangeFull, codes.ResourceExhausted, ReasonRangeFull},
		{store.ErrFailedPrecondition, codes.FailedPrecondition, ReasonPrecondition},
		{watch.ErrTooOld, codes.OutOfRange, ReasonTooOld},
		{watch.ErrOverflow, codes.ResourceExhausted, ReasonWatcherTooSlow},
	} {
		if errors.Is(err, m.kind) {
			return withDetails(m.code, err.Error(), m.reason)
		}
	}
	return status.Error(codes.Internal, err.Error())
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
	}
	return "INVALID"
}

func withDetails(code codes.Code, msg, reason string, extra ...*errdetails.BadRequest) error {
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}}
	for _, d := range extra {
		details = append(details, d)
	}
	if withInfo, err := st.WithDetails(details...); err == nil {
		st = withInfo
	}
	return st.Err()
}

func unaryErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, toStatus(err)
}

func streamErrors(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return toStatus(handler(srv, ss))
}
