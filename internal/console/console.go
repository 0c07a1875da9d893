// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package console is the operator's console: the kubectl-like commands of
// `svcreg` (get, describe, apply, delete, watch, drain, undrain) against a
// registry's public API. Output follows kubectl's habits: aligned tables
// on stdout, warnings and errors on stderr ("Error from server (NotFound):
// ..."), exit status 1 on any failure.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/meta"
)

// Console runs commands against one registry.
type Console struct {
	API svcregv1grpc.RegistryServiceClient
	Out io.Writer // tables and documents
	Err io.Writer // warnings and progress
	Now func() time.Time
	// ShowLabels adds a LABELS column to get's tables (--show-labels).
	ShowLabels bool
}

// The kinds the commands take (meta.Kind; Resource() is how they are
// typed, with kubectl's short names: meta.ParseResource).
const (
	Services  = meta.KindService
	Instances = meta.KindInstance
	Endpoints = meta.KindEndpoint
)

// ParseKind reads a kind as a person types it: singular, plural or short.
func ParseKind(s string) (meta.Kind, error) { return meta.ParseResource(s) }

// singular is a kind in "service/web".
func singular(kind meta.Kind) string { return kind.String() }

// Scope is where a command looks: one namespace, or all of them.
type Scope struct {
	Namespace     string
	AllNamespaces bool
	Selector      string
}

func (s Scope) namespace() string {
	if s.AllNamespaces {
		return meta.AllNamespaces
	}
	return meta.Namespace(s.Namespace)
}

// ErrorText renders an error as kubectl does: the server's with its
// reason ("Error from server (NotFound): ..."), any other as "error: ...".
// A hint that says what to do follows on its own line (Hint).
func ErrorText(err error) string {
	text := errorText(err)
	if h := Hint(err); h != "" {
		text += "\n" + h
	}
	return text
}

// Hint says what to do about an error a person can fix from the command
// line: a missing or rejected token, or TLS on one side only. Empty when
// there is nothing to say.
func Hint(err error) string {
	msg := err.Error()
	switch {
	case status.Code(err) == codes.Unauthenticated:
		return "hint: the registry wants a token: pass --token-file FILE (or set SVCREG_TOKEN_FILE; --token and SVCREG_TOKEN take the token itself). " +
			"A server started with --data-dir DIR wrote its operator token to DIR/bootstrap-token"
	case status.Code(err) == codes.PermissionDenied:
		return "hint: the token's role does not allow this; `svcreg token whoami` shows what it may do"
	case strings.Contains(msg, "error reading server preface") || strings.Contains(msg, "connection closed before server preface"):
		return "hint: the server speaks TLS: pass --cacert FILE (or set SVCREG_CACERT), the CA its certificate chains to"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "hint: the server does not speak TLS: leave out --cacert (and SVCREG_CACERT)"
	case strings.Contains(msg, "certificate signed by unknown authority"):
		return "hint: --cacert is not the CA the server's certificate chains to"
	}
	return ""
}

func errorText(err error) string {
	st, ok := status.FromError(err)
	if !ok || errors.Is(err, context.Canceled) {
		return "error: " + err.Error()
	}
	reason := st.Code().String()
	switch st.Code() {
	case codes.InvalidArgument:
		reason = "BadRequest"
	case codes.AlreadyExists:
		reason = "AlreadyExists"
	case codes.FailedPrecondition, codes.Aborted:
		reason = "Conflict"
	case codes.PermissionDenied:
		reason = "Forbidden"
	case codes.Unauthenticated:
		reason = "Unauthorized"
	case codes.Unavailable:
		return "error: the registry is unavailable: " + st.Message()
	}
	msg := st.Message()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if !strings.Contains(msg, v.GetField()) {
					msg += "; " + v.GetField() + ": " + v.GetDescription()
				}
			}
		}
	}
	return fmt.Sprintf("Error from server (%s): %s", reason, msg)
}

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// age is kubectl's short age: 45s, 12m, 5h, 3d.
func age(now time.Time, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// timeOf is a timestamp's time, zero when it is unset (AsTime would say
// 1970).
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
