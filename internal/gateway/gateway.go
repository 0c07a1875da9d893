// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package gateway is the registry's HTTP port: the REST API (grpc-gateway
// over the registry's own gRPC services, with Kubernetes' spellings on the
// way in and Kubernetes' status codes on the way out), /openapi.json,
// /metrics, the web view, the health endpoints and pprof, behind the
// port's admission and its browser guard. It calls the registry only
// through the gRPC connection it is given.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/textproto"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/svcreg/svcreg"
	gateway "github.com/svcreg/svcreg/gen/gw/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/admission"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/webui"
	"github.com/svcreg/svcreg/reason"
)

// MaxRequestBytes caps request bodies and messages (etcd allows 1.5 MiB).
const MaxRequestBytes = 3 << 19

// Config is what the HTTP port serves with.
type Config struct {
	// Conn reaches the registry's gRPC services.
	Conn *grpc.ClientConn
	// Observe measures each REST request (the server's metrics).
	Observe runtime.Middleware
	// Metrics serves /metrics; MetricsGuard, when set, guards it
	// (--metrics-auth).
	Metrics      http.Handler
	MetricsGuard func(http.Handler) http.Handler
	// Readyz serves /readyz.
	Readyz http.HandlerFunc
	// Kubernetes serves Kubernetes' discovery API: /api, /apis, /version.
	Kubernetes http.Handler
	// Pprof serves /debug/pprof.
	Pprof bool
	// BodyTimeout bounds how long a request body may take to arrive.
	BodyTimeout time.Duration
	Log         *slog.Logger
	// InFlight bounds each client's requests in flight; nil: no bound.
	InFlight *admission.InFlight
	// AllowedHosts and CertNames are the names the Host header may carry
	// beside IP addresses and localhost (browser.go).
	AllowedHosts []string
	CertNames    func() []string
}

// handler is the HTTP port's handler and its configuration.
type handler struct{ Config }

// New is everything the HTTP port serves.
func New(cfg Config) (http.Handler, error) {
	return handler{cfg}.build()
}

func (h handler) build() (http.Handler, error) {
	gw := runtime.NewServeMux(
		// Strict JSON: unknown fields and unknown enum names are errors (the
		// gateway's default discards them silently). Zero values are left
		// out, as kubectl's JSON does.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithErrorHandler(writeHTTPError),
		// Kubernetes' spellings are taken on the way in (spellings.go).
		runtime.WithMiddlewares(h.Observe, refuseUnknownQuery, respellBodies, honourIfMatch),
		runtime.WithForwardResponseOption(setETag),
		runtime.WithIncomingHeaderMatcher(forwardHeader),
		// Never forward gRPC response metadata as Grpc-Metadata-* headers.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
	)
	if err := gateway.RegisterRegistryServiceHandlerClient(context.Background(), gw, svcregv1grpc.NewRegistryServiceClient(h.Conn)); err != nil {
		return nil, err
	}
	if err := gateway.RegisterXDSServiceHandlerClient(context.Background(), gw, svcregv1grpc.NewXDSServiceClient(h.Conn)); err != nil {
		return nil, err
	}
	if err := gateway.RegisterTokenServiceHandlerClient(context.Background(), gw, svcregv1grpc.NewTokenServiceClient(h.Conn)); err != nil {
		return nil, err
	}
	// Only ListPeers has a REST route (the web view's cluster page).
	if err := gateway.RegisterOperatorServiceHandlerClient(context.Background(), gw, svcregv1grpc.NewOperatorServiceClient(h.Conn)); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(svcreg.OpenAPI)
	})
	metrics := h.Metrics
	if h.MetricsGuard != nil {
		metrics = h.MetricsGuard(metrics)
	}
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /ui/", webui.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	if h.Kubernetes != nil {
		for _, p := range []string{"/api", "/api/", "/apis", "/apis/", "GET /version", "GET /openapi/v2"} {
			mux.Handle(p, h.Kubernetes)
		}
	}
	mux.HandleFunc("GET /readyz", h.Readyz)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	if h.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return h.limitBody(h.admitHTTP(h.recover(h.browserGuard(mux)))), nil
}

// recover turns a panic in a handler into a 500, logged once with its
// stack, instead of a dropped connection.
func (h handler) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.Log.Error("panic serving a REST request: answered 500, still serving", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				st, _ := status.FromError(apierror.WithDetails(codes.Internal, "internal error; the server logged it", reason.Internal, nil))
				WriteStatus(w, r, http.StatusInternalServerError, st)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// forwardHeader passes only Authorization to the gRPC side: REST callers
// must not be able to set arbitrary gRPC metadata (Grpc-Metadata-*), and
// X-Forwarded-For is never identity.
func forwardHeader(key string) (string, bool) {
	if textproto.CanonicalMIMEHeaderKey(key) == "Authorization" {
		return "authorization", true
	}
	return "", false
}

// limitBody rejects bodies over MaxRequestBytes (at once with 413 when the
// length is declared, while reading otherwise) and bounds how long a body
// may take to arrive: a slow client holds a connection for bodyTime at
// most, without cutting off a watch's long response. It is the outermost
// layer, so the bound holds for every answer, including the ones given
// before the body is read (a wrong Host or Content-Type, admission).
func (h handler) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxRequestBytes {
			WriteStatus(w, r, http.StatusRequestEntityTooLarge, status.New(codes.InvalidArgument,
				"request body too large: the limit is 1.5 MiB"))
			return
		}
		rc := http.NewResponseController(w)
		if r.ContentLength == 0 || r.Body == http.NoBody {
			rc.SetReadDeadline(time.Time{})
			next.ServeHTTP(w, r)
			return
		}
		rc.SetReadDeadline(time.Now().Add(h.BodyTimeout))
		body := &deadlineBody{ReadCloser: http.MaxBytesReader(w, r.Body, MaxRequestBytes), rc: rc, timeout: h.BodyTimeout}
		r.Body = body
		next.ServeHTTP(closeUnlessRead{ResponseWriter: w, body: body}, r)
	})
}

// deadlineBody lifts the read deadline once the body is read, and says
// which limit a body that came too slowly ran into.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	read    atomic.Bool // the body was read to its end
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.read.Store(true)
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%s (%v, --http-body-timeout)", bodyTimeout, b.timeout)
	}
	return n, err
}

// bodyTimeout starts the error of a body that did not arrive in time; the
// gateway passes its decoder's errors on as text, so this is what
// writeHTTPError recognises.
const bodyTimeout = "the request body did not arrive within the body timeout"

// closeUnlessRead closes the connection after an answer given before the
// body was read to its end (an early refusal, a body too slow or too
// large). Kept open, net/http would first read the rest of the body to
// reuse the connection, and a client that stops sending would hold it
// with the answer never sent.
type closeUnlessRead struct {
	http.ResponseWriter
	body *deadlineBody
}

func (w closeUnlessRead) WriteHeader(code int) {
	if !w.body.read.Load() {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w closeUnlessRead) Write(b []byte) (int, error) {
	if !w.body.read.Load() {
		w.Header().Set("Connection", "close")
	}
	return w.ResponseWriter.Write(b)
}

func (w closeUnlessRead) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps a streamed answer (a watch) working when its request had a
// body: the gateway looks for http.Flusher itself.
func (w closeUnlessRead) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// writeHTTPError maps gRPC status to HTTP with Kubernetes' choices: invalid
// fields are 422 Unprocessable Entity (malformed requests stay 400), stale
// etags 409 (412 when If-Match named the etag), and the body is the google.rpc.Status as JSON.
func writeHTTPError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	code := runtime.HTTPStatusFromCode(st.Code())
	switch {
	case st.Code() == codes.InvalidArgument && hasFieldViolations(st):
		code = http.StatusUnprocessableEntity
		st = jsonFieldPaths(st)
	case strings.Contains(st.Message(), bodyTimeout):
		code = http.StatusRequestTimeout
		st = status.New(codes.DeadlineExceeded, st.Message()[strings.Index(st.Message(), bodyTimeout):])
	case st.Code() == codes.InvalidArgument && strings.Contains(st.Message(), "request body too large"):
		code = http.StatusRequestEntityTooLarge
	case st.Code() == codes.InvalidArgument && reason.Of(err) == "":
		// The gateway's own errors (malformed JSON, bad query parameters)
		// carry bare decoder messages; say what they are about.
		st = status.New(codes.InvalidArgument, "malformed request: "+st.Message())
	case reason.Of(err) == reason.EtagMismatch && r.Header.Get("If-Match") != "":
		code = http.StatusPreconditionFailed // RFC 9110 section 13.1.1
	case st.Code() == codes.Aborted:
		code = http.StatusConflict
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code = http.StatusRequestEntityTooLarge
	}
	if code == http.StatusUnauthorized {
		// RFC 6750 section 3: say which scheme to use, and whether the
		// token sent was the trouble.
		challenge := `Bearer realm="svcreg"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	WriteStatus(w, r, code, st)
}

func hasFieldViolations(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.BadRequest); ok {
			return true
		}
	}
	return false
}

var statusMarshaler = &runtime.JSONPb{}

// WriteStatus writes a gRPC status as the REST API does: its JSON, with
// the HTTP code given.
func WriteStatus(w http.ResponseWriter, _ *http.Request, code int, st *status.Status) {
	body, err := statusMarshaler.Marshal(st.Proto())
	if err != nil {
		body = []byte(`{"code":13,"message":"failed to marshal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(body)
	w.Write([]byte("\n"))
}
