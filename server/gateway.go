package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/pprof"
	"net/textproto"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/svcreg/svcreg"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// maxRequestBytes caps request bodies and messages (etcd allows 1.5 MiB).
const maxRequestBytes = 3 << 19

// newGateway serves the REST API by calling the gRPC server through conn,
// so that REST requests pass the same interceptors as gRPC ones.
func newGateway(ctx context.Context, conn *grpc.ClientConn, metrics http.HandlerFunc, withPprof bool) (http.Handler, error) {
	gw := runtime.NewServeMux(
		// Strict JSON: unknown fields and unknown enum names are errors (the
		// gateway's default discards them silently). Zero values are left
		// out, as kubectl's JSON does.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithErrorHandler(writeHTTPError),
		runtime.WithIncomingHeaderMatcher(forwardHeader),
		// Never forward gRPC response metadata as Grpc-Metadata-* headers.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
	)
	if err := svcregv1.RegisterRegistryServiceHandlerClient(ctx, gw, svcregv1.NewRegistryServiceClient(conn)); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", limitBody(gw))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(svcreg.OpenAPI)
	})
	mux.HandleFunc("GET /metrics", metrics)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return mux, nil
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

// limitBody rejects bodies over maxRequestBytes: at once with 413 when the
// length is declared, while reading otherwise.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxRequestBytes {
			writeStatus(w, r, http.StatusRequestEntityTooLarge, status.New(codes.InvalidArgument,
				"request body too large: the limit is 1.5 MiB"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		next.ServeHTTP(w, r)
	})
}

// writeHTTPError maps gRPC status to HTTP with Kubernetes' choices: invalid
// fields are 422 Unprocessable Entity (malformed requests stay 400), stale
// etags 409, and the body is the google.rpc.Status as JSON.
func writeHTTPError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	code := runtime.HTTPStatusFromCode(st.Code())
	switch {
	case st.Code() == codes.InvalidArgument && hasFieldViolations(st):
		code = http.StatusUnprocessableEntity
	case st.Code() == codes.InvalidArgument && strings.Contains(st.Message(), "request body too large"):
		code = http.StatusRequestEntityTooLarge
	case st.Code() == codes.InvalidArgument:
		// The gateway's own errors (malformed JSON, bad query parameters)
		// carry bare decoder messages; say what they are about.
		st = status.New(codes.InvalidArgument, "malformed request: "+st.Message())
	case st.Code() == codes.Aborted:
		code = http.StatusConflict
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code = http.StatusRequestEntityTooLarge
	}
	writeStatus(w, r, code, st)
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

func writeStatus(w http.ResponseWriter, _ *http.Request, code int, st *status.Status) {
	body, err := statusMarshaler.Marshal(st.Proto())
	if err != nil {
		body = []byte(`{"code":13,"message":"failed to marshal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(body)
	w.Write([]byte("\n"))
}
