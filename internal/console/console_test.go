// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package console

import (
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

func TestAge(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{{0, "0s"}, {-time.Second, "0s"}, {119 * time.Second, "119s"}, {2 * time.Minute, "2m"}, {179 * time.Minute, "179m"},
		{3 * time.Hour, "3h"}, {47 * time.Hour, "47h"}, {49 * time.Hour, "2d"}}
	for _, tt := range tests {
		if got := age(now, now.Add(-tt.ago)); got != tt.want {
			t.Errorf("age(%v) = %q, want %q", tt.ago, got, tt.want)
		}
	}
	if got := age(now, time.Time{}); got != "<unknown>" {
		t.Errorf("age of no time = %q", got)
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]meta.Kind{"svc": Services, "Service": Services, "services": Services, "inst": Instances,
		"instance": Instances, "ep": Endpoints, "endpoints": Endpoints} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseKind("pods"); err == nil {
		t.Error("pods parsed")
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, `services "web" not found`), `Error from server (NotFound): services "web" not found`},
		{status.Error(codes.InvalidArgument, "name: bad"), "Error from server (BadRequest): name: bad"},
		{status.Error(codes.PermissionDenied, "no"), "Error from server (Forbidden): no\nhint: the token's role does not allow this; `svcreg token whoami` shows what it may do"},
		{status.Error(codes.Unauthenticated, "no credential"), "Error from server (Unauthorized): no credential\nhint: the registry wants a token: pass --token-file FILE " +
			"(or set SVCREG_TOKEN_FILE; --token and SVCREG_TOKEN take the token itself). A server started with --data-dir DIR wrote its operator token to DIR/bootstrap-token"},
		{status.Error(codes.Unavailable, "down"), "error: the registry is unavailable: down"},
		{status.Error(codes.Unavailable, `connection error: desc = "error reading server preface: EOF"`),
			"error: the registry is unavailable: connection error: desc = \"error reading server preface: EOF\"\nhint: the server speaks TLS: pass --cacert FILE (or set SVCREG_CACERT), the CA its certificate chains to"},
		{status.Error(codes.Unavailable, "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"),
			"error: the registry is unavailable: transport: authentication handshake failed: tls: first record does not look like a TLS handshake\nhint: the server does not speak TLS: leave out --cacert (and SVCREG_CACERT)"},
		{errors.New("the path \"x\" does not exist"), `error: the path "x" does not exist`},
	}
	for _, tt := range tests {
		if got := ErrorText(tt.err); got != tt.want {
			t.Errorf("ErrorText(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// FuzzParseOutput: any -o value is accepted or refused with an error,
// never a panic; an accepted template prints without one.
func FuzzParseOutput(f *testing.F) {
	for _, s := range []string{"", "wide", "yaml", "jsonpath={.items[*].name}", `jsonpath={range .items[*]}{.name}{"\n"}{end}`,
		"custom-columns=NAME:.name,IP:.ip", "custom-columns=", "jsonpath={.items[?(@.name==\"web\")].ip}", "custom-columns=A:{.x}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := ParseOutput(s)
		if err != nil || parseTemplateOutput(out) == errNotTemplate {
			return
		}
		svc := &svcregv1.Service{Name: "web", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Port: 80}}}
		_ = printTemplate(io.Discard, out, []proto.Message{svc}, true)
	})
}
