// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package gateway

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The REST port is on loopback in the quick start, with auth off: any web
// page the operator opens could otherwise write to it (a cross-site form
// or text/plain POST needs no CORS preflight) or read it (a DNS rebinding
// page: a name of the attacker's that resolves to 127.0.0.1). So, before
// anything else:
//
//   - writes from another origin are refused (net/http's
//     CrossOriginProtection: Sec-Fetch-Site, else Origin against Host);
//   - writes must say their body is JSON (Content-Type application/json
//     or a +json type; on Kubernetes' API, any type a page cannot send
//     without a preflight, as its clients send protobuf and YAML): the
//     content types a page may send without a preflight are refused (415);
//   - the Host header must name this server: an IP address, "localhost",
//     a name of the TLS certificate, or one of --http-allowed-host (421
//     otherwise). A rebinding page's Host is its own name.

// browserGuard wraps the REST handler.
func (h handler) browserGuard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteStatus(w, r, http.StatusForbidden, status.New(codes.PermissionDenied,
			"a write from another origin (a web page) is refused: the REST API takes writes only from programs and the web view it serves"))
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.hostAllowed(r.Host) {
			WriteStatus(w, r, http.StatusMisdirectedRequest, status.New(codes.PermissionDenied, fmt.Sprintf(
				"the Host header %q is not a name of this server: use its address or localhost, or start it with --http-allowed-host %s", clip(r.Host), clip(hostOnly(r.Host)))))
			return
		}
		if isWrite(r.Method) && !jsonBody(r) && !(kubernetesPath(r.URL.Path) && preflighted(r)) {
			WriteStatus(w, r, http.StatusUnsupportedMediaType, status.New(codes.InvalidArgument, fmt.Sprintf(
				"Content-Type %q: the REST API takes JSON bodies: send Content-Type: application/json", clip(r.Header.Get("Content-Type")))))
			return
		}
		next.ServeHTTP(w, r)
	}))
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// jsonBody: a write's body is declared JSON, or it has none and declares
// nothing (a DELETE, a POST of an empty body by a program).
func jsonBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// kubernetesPath: Kubernetes' API, whose clients also write protobuf and
// YAML bodies.
func kubernetesPath(path string) bool {
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/apis/")
}

// preflighted: a body type a page cannot send without a CORS preflight
// (which this server never answers), so not one a page's write could
// carry: anything but the CORS-safelisted types (Fetch, "CORS-safelisted
// request-header").
func preflighted(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return false
	}
	return true
}

// hostAllowed reports whether a request's Host names this server.
func (h handler) hostAllowed(hostport string) bool {
	host := hostOnly(hostport)
	if host == "" {
		return true // HTTP/1.0 without Host: nothing a browser sends
	}
	if _, err := netipParse(host); err == nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if slices.ContainsFunc(h.AllowedHosts, func(a string) bool { return strings.EqualFold(a, host) }) {
		return true
	}
	return h.CertNames != nil && slices.ContainsFunc(h.CertNames(), func(n string) bool { return matchCertName(n, host) })
}

func hostOnly(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return strings.Trim(hostport, "[]")
}

func netipParse(host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	return nil, &net.ParseError{Type: "IP address", Text: host}
}

// matchCertName matches a host against a certificate name, "*." wildcards
// included (one label).
func matchCertName(name, host string) bool {
	name = strings.ToLower(name)
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		_, after, found := strings.Cut(host, ".")
		return found && after == rest
	}
	return name == host
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
