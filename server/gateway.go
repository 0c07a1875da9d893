package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/textproto"
	"runtime/debug"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/svcreg/svcreg"
	gateway "github.com/svcreg/svcreg/gen/gw/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/admission"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/reason"
)

// maxRequestBytes caps request bodies and messages (etcd allows 1.5 MiB).
const maxRequestBytes = 3 << 19

// The REST gateway calls the registry through a gRPC server of its own, in
// this process, over an in-memory connection (bufconn): the same services
// and the same interceptors as the gRPC port, but not the gRPC port's
// per-connection stream limit, which one shared connection would hit at
// 1,024 open REST watches. REST clients are bounded by the HTTP listener's
// connection limit and the watch limit instead.
type restGateway struct {
	grpc *grpc.Server
	lis  *bufconn.Listener
	conn *grpc.ClientConn
}

const bufconnSize = 1 << 20

func newRESTGateway(register func(*grpc.Server), ic *interceptors, maxStreams uint32) (*restGateway, error) {
	g := &restGateway{lis: bufconn.Listen(bufconnSize)}
	g.grpc = grpc.NewServer(append(ic.serverOptions(),
		grpc.MaxRecvMsgSize(maxRequestBytes),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.ForceServerCodecV2(newCodec()))...)
	register(g.grpc)
	conn, err := grpc.NewClient("passthrough:///rest-gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return g.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	g.conn = conn
	go g.grpc.Serve(g.lis)
	return g, nil
}

func (g *restGateway) close() {
	g.conn.Close()
	g.grpc.Stop()
}

// httpHandler is everything the HTTP port serves.
type httpHandler struct {
	conn     *grpc.ClientConn
	metrics  *serverMetrics
	readyz   http.HandlerFunc
	pprof    bool
	bodyTime time.Duration
	log      *slog.Logger
	inFlight *admission.InFlight // nil: no per-client bound
	// allowedHosts and certNames are the names the Host header may carry
	// beside IP addresses and localhost (browser.go).
	allowedHosts []string
	certNames    func() []string
	// metricsGuard, when set, guards /metrics (--metrics-auth).
	metricsGuard func(http.Handler) http.Handler
}

func (h httpHandler) build() (http.Handler, error) {
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
		runtime.WithMiddlewares(h.metrics.restMiddleware, refuseUnknownQuery, respellBodies),
		runtime.WithIncomingHeaderMatcher(forwardHeader),
		// Never forward gRPC response metadata as Grpc-Metadata-* headers.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
	)
	if err := gateway.RegisterRegistryServiceHandlerClient(context.Background(), gw, svcregv1grpc.NewRegistryServiceClient(h.conn)); err != nil {
		return nil, err
	}
	if err := gateway.RegisterXDSServiceHandlerClient(context.Background(), gw, svcregv1grpc.NewXDSServiceClient(h.conn)); err != nil {
		return nil, err
	}
	if err := gateway.RegisterTokenServiceHandlerClient(context.Background(), gw, svcregv1grpc.NewTokenServiceClient(h.conn)); err != nil {
		return nil, err
	}
	// Only ListPeers has a REST route (the web view's cluster page).
	if err := gateway.RegisterOperatorServiceHandlerClient(context.Background(), gw, svcregv1grpc.NewOperatorServiceClient(h.conn)); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", h.limitBody(gw))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(svcreg.OpenAPI)
	})
	metrics := h.metrics.handler()
	if h.metricsGuard != nil {
		metrics = h.metricsGuard(metrics)
	}
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /ui/", webView())
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	if h.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return h.admitHTTP(h.recover(h.browserGuard(mux))), nil
}

// recover turns a panic in a handler into a 500, logged once with its
// stack, instead of a dropped connection.
func (h httpHandler) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.log.Error("panic serving a REST request: answered 500, still serving", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				st, _ := status.FromError(apierror.WithDetails(codes.Internal, "internal error; the server logged it", reason.Internal, nil))
				writeStatus(w, r, http.StatusInternalServerError, st)
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

// limitBody rejects bodies over maxRequestBytes (at once with 413 when the
// length is declared, while reading otherwise) and bounds how long a body
// may take to arrive: a slow client holds a connection for bodyTime at
// most, without cutting off a watch's long response.
func (h httpHandler) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxRequestBytes {
			writeStatus(w, r, http.StatusRequestEntityTooLarge, status.New(codes.InvalidArgument,
				"request body too large: the limit is 1.5 MiB"))
			return
		}
		rc := http.NewResponseController(w)
		if r.ContentLength == 0 || r.Body == http.NoBody {
			rc.SetReadDeadline(time.Time{})
		} else {
			rc.SetReadDeadline(time.Now().Add(h.bodyTime))
			r.Body = &deadlineBody{ReadCloser: http.MaxBytesReader(w, r.Body, maxRequestBytes), rc: rc}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is read.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
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
		st = jsonFieldPaths(st)
	case st.Code() == codes.InvalidArgument && strings.Contains(st.Message(), "request body too large"):
		code = http.StatusRequestEntityTooLarge
	case st.Code() == codes.InvalidArgument && reason.Of(err) == "":
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
	if code == http.StatusUnauthorized {
		// RFC 6750 section 3: say which scheme to use, and whether the
		// token sent was the trouble.
		challenge := `Bearer realm="svcreg"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
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
