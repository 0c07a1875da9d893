// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/svcreg/svcreg/gen/svcreg/cluster/v1"
	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/certs"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/internal/store"
)

// Authentication and authorization (docs/security.md). Every gRPC server
// of the registry (the client port, the REST gateway's in-process one,
// the peer port) runs the guard's interceptors, so a request reaches a
// handler only after:
//
//  1. authenticate: the credential becomes a principal. On the client
//     port: a bearer token, else the identity of a verified client
//     certificate. Through the gateway: a bearer token only (the gateway's
//     own connection has no certificate to honour). On the peer port: the
//     principal the forwarding server names, looked up again here, or, for
//     the servers' own calls, a principal allowed everything (the peer
//     port admits only the cluster's servers).
//  2. authorize: rules (rules.go) name the action and namespace, and
//     auth.Authorize decides: the one decision point.
//  3. audit: writes and denials are logged with the accessor, never the
//     secret.

// port is which gRPC server a guard guards.
type port uint8

const (
	portClient port = iota
	portGateway
	portPeer
)

// principalKey is the metadata a server forwarding a request to the leader
// names its caller with; only the peer port honours it.
const principalKey = "svcreg-principal"

// access is what the guard learned of a request: who, and what Authorize
// granted (the handlers read it to stamp writes and filter lists).
type access struct {
	principal *auth.Principal
	grant     auth.Grant
}

type accessKey struct{}

var allowAll = &access{principal: auth.Anyone}

// accessOf returns the request's access; everything when auth is off.
func accessOf(ctx context.Context) *access {
	if a, ok := ctx.Value(accessKey{}).(*access); ok {
		return a
	}
	return allowAll
}

// visibleTo is the namespace filter of a list or watch across namespaces:
// nil when the caller may read everything.
func visibleTo(ctx context.Context) func(string) bool {
	p := accessOf(ctx).principal
	if p.Everything {
		return nil
	}
	return func(ns string) bool { return auth.CanRead(p, ns) }
}

// forwardedFor adds the caller to a request this server passes on to the
// leader, which authorizes it again.
func forwardedFor(ctx context.Context) context.Context {
	if p := accessOf(ctx).principal; !p.Everything {
		return metadata.AppendToOutgoingContext(ctx, principalKey, p.Accessor)
	}
	return ctx
}

// guard holds what every port's interceptors share.
type guard struct {
	enabled  bool
	store    *store.Store
	clock    clock.Clock
	log      *slog.Logger
	sessions *sessions
	known    principalCache
	// caughtUp is nil once this server has caught up with the cluster:
	// before, a token it does not know may be one it has not applied yet,
	// so the answer is NOT_READY (retry), not UNAUTHENTICATED (a client
	// would throw a valid credential away).
	caughtUp func() error
}

// unknown is the error for a credential this server does not know.
func (g *guard) unknown(err error) error {
	if g.caughtUp != nil {
		if notReady := g.caughtUp(); notReady != nil {
			return fmt.Errorf("%w (it cannot tell whether the credential is valid yet: retry)", notReady)
		}
	}
	return err
}

// principalCache remembers the principals of secrets seen, by the
// secret's SHA-256, until any token changes: a request then costs one
// hash and one map lookup, not a store read. An entry is valid only at the
// generation it was read at, so one stored after a revocation raced it
// is never used.
type principalCache struct {
	gen atomic.Uint64
	m   sync.Map // [32]byte -> cachedPrincipal
}

type cachedPrincipal struct {
	gen uint64
	p   *auth.Principal
}

func (c *principalCache) invalidate() {
	c.gen.Add(1)
	c.m.Clear()
}

// authenticate turns a request's credential into a principal.
func (g *guard) authenticate(ctx context.Context, at port) (*auth.Principal, error) {
	if !g.enabled {
		return auth.Anyone, nil
	}
	if at == portPeer {
		if names := metadata.ValueFromIncomingContext(ctx, principalKey); len(names) > 0 {
			return g.byAccessor(names[0])
		}
		return auth.Anyone, nil
	}
	if values := metadata.ValueFromIncomingContext(ctx, "authorization"); len(values) > 0 {
		secret, ok := auth.BearerToken(values[0])
		if !ok {
			return nil, fmt.Errorf("%w: the authorization header is not \"Bearer <token>\"", auth.ErrUnauthenticated)
		}
		return g.bySecret(secret)
	}
	if at == portClient {
		if cert := verifiedClientCert(ctx); cert != nil {
			return g.byCertificate(cert)
		}
	}
	return nil, fmt.Errorf("%w: no credential: send a token as \"authorization: Bearer <token>\"", auth.ErrUnauthenticated)
}

func verifiedClientCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	return info.State.PeerCertificates[0]
}

func (g *guard) bySecret(secret string) (*auth.Principal, error) {
	sum := sha256.Sum256([]byte(secret))
	gen := g.known.gen.Load()
	if c, ok := g.known.m.Load(sum); ok && c.(cachedPrincipal).gen == gen {
		return g.valid(c.(cachedPrincipal).p)
	}
	t, err := g.store.Read().TokenByHash(hex.EncodeToString(sum[:]))
	if err != nil || subtle.ConstantTimeCompare(sum[:], t.GetSecretSha256()) != 1 {
		return nil, g.unknown(fmt.Errorf("%w: the token is not known here (revoked, or never created)", auth.ErrUnauthenticated))
	}
	p := auth.FromToken(t.GetToken())
	g.known.m.Store(sum, cachedPrincipal{gen, p})
	return g.valid(p)
}

func (g *guard) byCertificate(cert *x509.Certificate) (*auth.Principal, error) {
	id, err := certs.Identity(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", auth.ErrUnauthenticated, err)
	}
	t, err := g.store.Read().TokenByIdentity(id)
	if err != nil {
		return nil, g.unknown(fmt.Errorf("%w: the client certificate's identity %q is bound to no role", auth.ErrUnauthenticated, id))
	}
	return g.valid(auth.FromToken(t.GetToken()))
}

func (g *guard) byAccessor(accessor string) (*auth.Principal, error) {
	t, err := g.store.Read().Token(accessor)
	if err != nil {
		return nil, g.unknown(fmt.Errorf("%w: token %s is not known here (revoked meanwhile?)", auth.ErrUnauthenticated, accessor))
	}
	return g.valid(auth.FromToken(t.GetToken()))
}

func (g *guard) valid(p *auth.Principal) (*auth.Principal, error) {
	if !p.Expires.IsZero() && !g.clock.Now().Before(p.Expires) {
		return nil, fmt.Errorf("%w: token %s expired", auth.ErrUnauthenticated, p.Accessor)
	}
	return p, nil
}

// authorize is the guard's one call of auth.Authorize, audited when it
// denies.
func (g *guard) authorize(ctx context.Context, p *auth.Principal, r rule, method string, req any) (auth.Grant, error) {
	if r.self {
		return auth.Grant{}, nil
	}
	ns, object := "", ""
	if r.scope != nil {
		ns, object = r.scope(req)
	}
	grant, err := auth.Authorize(p, r.action, ns)
	if err != nil {
		g.audit(ctx, p, method, ns, object, err)
	}
	return grant, err
}

// audit logs a write or a denial: who (the accessor, never the secret),
// what, where, and how it ended.
func (g *guard) audit(ctx context.Context, p *auth.Principal, method, ns, object string, err error) {
	accessor := "-"
	if p != nil {
		accessor = p.Accessor
		if p.Everything {
			accessor = "(auth off)"
		}
	}
	outcome := "OK"
	if err != nil {
		outcome = status.Code(apierror.ToStatus(err)).String()
	}
	attrs := []slog.Attr{slog.String("accessor", accessor), slog.String("method", method), slog.String("namespace", ns),
		slog.String("object", object), slog.String("outcome", outcome)}
	if p == nil {
		if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
			attrs = append(attrs, slog.String("remote", pr.Addr.String()))
		}
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// gate is a guard at one port.
type gate struct {
	*guard
	at port
}

func (g gate) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	r, known := rules[info.FullMethod]
	if r.public || !g.enabled {
		return handler(ctx, req)
	}
	p, err := g.authenticate(ctx, g.at)
	if err != nil {
		g.audit(ctx, nil, info.FullMethod, "", "", err)
		return nil, err
	}
	if !known {
		if err := g.unknownMethod(ctx, p, info.FullMethod); err != nil {
			return nil, err
		}
		resp, err := handler(ctx, req) // the servers' own calls on the peer port
		if object, ok := peerWrites[info.FullMethod]; ok && g.at == portPeer {
			g.audit(ctx, &auth.Principal{Accessor: "peer:" + cluster.PeerOf(ctx)}, info.FullMethod, "", object(req), err)
		}
		return resp, err
	}
	grant, err := g.authorize(ctx, p, r, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	resp, err := handler(context.WithValue(ctx, accessKey{}, &access{principal: p, grant: grant}), req)
	if r.action > auth.Read && !r.quiet && !p.Everything {
		ns, object := "", ""
		if r.scope != nil {
			ns, object = r.scope(req)
		}
		g.audit(ctx, p, info.FullMethod, ns, object, err)
	}
	return resp, err
}

// peerWrites are the peer port's own methods that change the cluster:
// every call is audited with the calling server's node ID (bound by the
// peer handshake) and what it changed.
var peerWrites = map[string]func(req any) string{
	clusterv1.PeerService_ApplyCommand_FullMethodName: func(req any) string {
		return commandName(req.(*clusterv1.ApplyCommandRequest).GetCommand())
	},
	clusterv1.PeerService_Join_FullMethodName: func(req any) string {
		return "join " + req.(*clusterv1.JoinRequest).GetId()
	},
}

// commandName is a command's operation, as audit lines name it.
func commandName(cmd *storev1.Command) string {
	if op := cmd.ProtoReflect().WhichOneof(cmd.ProtoReflect().Descriptor().Oneofs().ByName("op")); op != nil {
		return string(op.Name())
	}
	return "(none)"
}

// unknownMethod denies a method the rules do not name, except to the
// servers themselves.
func (g gate) unknownMethod(ctx context.Context, p *auth.Principal, method string) error {
	if p.Everything {
		return nil
	}
	err := fmt.Errorf("%w: %s is not a method this registry grants to tokens", auth.ErrPermissionDenied, method)
	g.audit(ctx, p, method, "", "", err)
	return err
}

func (g gate) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	r, known := rules[info.FullMethod]
	if r.public || !g.enabled {
		return handler(srv, ss)
	}
	ctx := ss.Context()
	p, err := g.authenticate(ctx, g.at)
	if err != nil {
		g.audit(ctx, nil, info.FullMethod, "", "", err)
		return err
	}
	if !known {
		if err := g.unknownMethod(ctx, p, info.FullMethod); err != nil {
			return err
		}
	}
	acc := &access{principal: p}
	if r.scope == nil || r.atOpen { // authorized now, not per message
		if acc.grant, err = g.authorize(ctx, p, r, info.FullMethod, nil); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancelCause(context.WithValue(ctx, accessKey{}, acc))
	defer cancel(nil)
	if !p.Everything {
		defer g.sessions.open(p, cancel)()
	}
	err = handler(srv, &guardedStream{ServerStream: ss, ctx: ctx, gate: g, rule: r, method: info.FullMethod, acc: acc})
	if cause := context.Cause(ctx); errors.Is(cause, auth.ErrUnauthenticated) {
		return cause // revoked or expired while the stream was open
	}
	return err
}

// guardedStream authorizes a stream's first message (or each one, for
// perMessage rules) before the handler sees it.
type guardedStream struct {
	grpc.ServerStream
	ctx    context.Context
	gate   gate
	rule   rule
	method string
	acc    *access
	seen   bool
}

func (s *guardedStream) Context() context.Context { return s.ctx }

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.rule.scope == nil || s.rule.atOpen || s.seen && !s.rule.perMessage {
		return nil
	}
	s.seen = true
	grant, err := s.gate.authorize(s.ctx, s.acc.principal, s.rule, s.method, m)
	if err != nil {
		return err
	}
	s.acc.grant = grant // the handler reads it after RecvMsg, on this goroutine
	return nil
}

// sessions are the open streams of principals that may lose their
// credential: each ends with UNAUTHENTICATED as soon as its token is
// revoked (a commit deletes it, on every server) or expires.
type sessions struct {
	store   *store.Store
	clock   clock.Clock
	changed chan struct{} // 1-buffered: a token changed

	mu     sync.Mutex
	active map[*session]struct{}
}

type session struct {
	accessor string
	cancel   context.CancelCauseFunc
}

func newSessions(st *store.Store, clock clock.Clock) *sessions {
	s := &sessions{store: st, clock: clock, changed: make(chan struct{}, 1), active: map[*session]struct{}{}}
	st.OnTokenChange(func() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	})
	return s
}

// open registers a stream and returns its release.
func (s *sessions) open(p *auth.Principal, cancel context.CancelCauseFunc) func() {
	sess := &session{accessor: p.Accessor, cancel: cancel}
	var timer clock.Timer
	if !p.Expires.IsZero() {
		timer = s.clock.AfterFunc(p.Expires.Sub(s.clock.Now()), func() {
			cancel(fmt.Errorf("%w: token %s expired", auth.ErrUnauthenticated, p.Accessor))
		})
	}
	s.mu.Lock()
	s.active[sess] = struct{}{}
	s.mu.Unlock()
	return func() {
		if timer != nil {
			timer.Stop()
		}
		s.mu.Lock()
		delete(s.active, sess)
		s.mu.Unlock()
	}
}

// run re-checks the open streams' tokens after every token change.
func (s *sessions) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
			s.recheck()
		}
	}
}

func (s *sessions) recheck() {
	tx := s.store.Read()
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.active {
		if _, err := tx.Token(sess.accessor); err != nil {
			sess.cancel(fmt.Errorf("%w: token %s was revoked", auth.ErrUnauthenticated, sess.accessor))
		}
	}
}
