// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package resolver is the "svcreg" gRPC name resolver: a ClientConn dialed
// to svcreg:///web.shop:grpc follows the registry's endpoints of service
// web in namespace shop, pushed over a watch within milliseconds (no
// polling, no 30 s DNS floor). A blank import registers it:
//
//	import _ "github.com/svcreg/svcreg/resolver"
//
// Every target and ClientConn of a process shares one registry connection
// per registry address and one watch per service. Each update publishes
// the whole state: the ready endpoints, the terminating-but-serving ones
// marked as such, and the service's scheduler as the ipvs policy's service
// config. When the registry is unreachable the last state stays and the
// watch reconnects with backoff, resuming by revision.
package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clientauth"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/servicemodel"
)

// Scheme is the resolver's URL scheme.
const Scheme = "svcreg"

func init() {
	resolver.Register(NewBuilder())
}

// Option configures a Builder.
type Option func(*builder)

// WithDialOptions sets the dial options of the registry connections (TLS
// credentials, interceptors); the default is plaintext.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(b *builder) { b.dial = append(b.dial, opts...) }
}

// WithToken sends a bearer token to the registry on every call (the
// default is $SVCREG_TOKEN, else the file $SVCREG_TOKEN_FILE names).
func WithToken(token string) Option {
	return func(b *builder) { b.creds.Token = token }
}

// WithTokenFile reads the bearer token from a file, again whenever it
// changes.
func WithTokenFile(path string) Option {
	return func(b *builder) { b.creds.TokenFile = path }
}

// WithTLS dials the registry over TLS: conf for client certificates and
// the server name, caFile (PEM) for the CA the registry's certificate
// must chain to; either may be empty. The default is $SVCREG_CACERT, else
// plaintext.
func WithTLS(conf *tls.Config, caFile string) Option {
	return func(b *builder) { b.creds.TLS, b.creds.CAFile = conf, caFile }
}

// WithRegistry sets the registry address used when a target has no
// authority, instead of $SVCREG_ADDR or 127.0.0.1:7400.
func WithRegistry(addr string) Option {
	return func(b *builder) { b.registry = addr }
}

// WithLocality says where this client runs, for services that prefer
// close endpoints (traffic_distribution, internal_traffic_policy Local;
// docs/health.md, "Topology"). The default is $SVCREG_ZONE and
// $SVCREG_NODE.
func WithLocality(zone, node string) Option {
	return func(b *builder) { b.locality = servicemodel.Locality{Zone: zone, Node: node} }
}

// WithMinRevision makes each new watch's first snapshot hold at least
// the revision rev returns (read-your-writes: client.Client passes the
// revision of its own last write, so a backend it just registered is
// there even when the watch lands on a follower that is a moment behind).
func WithMinRevision(rev func() int64) Option {
	return func(b *builder) { b.minRevision = rev }
}

// NewBuilder returns a resolver builder for grpc.WithResolvers, with its
// own registry connections.
func NewBuilder(opts ...Option) resolver.Builder {
	b := &builder{pool: &pool{conns: map[string]*registryConn{}},
		locality: servicemodel.Locality{Zone: os.Getenv("SVCREG_ZONE"), Node: os.Getenv("SVCREG_NODE")}}
	for _, o := range opts {
		o(b)
	}
	b.pool.dial, b.pool.creds, b.pool.locality, b.pool.minRevision = b.dial, b.creds, b.locality, b.minRevision
	return b
}

// logger is the resolver's grpclog component.
var logger = grpclog.Component("svcreg")

type builder struct {
	dial        []grpc.DialOption
	creds       clientauth.Config
	registry    string
	locality    servicemodel.Locality
	minRevision func() int64
	pool        *pool
}

func (*builder) Scheme() string { return Scheme }

func (b *builder) Build(target resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	t, err := parseGRPCTarget(target)
	if err != nil {
		return nil, err
	}
	addr := t.Registry
	if addr == "" {
		addr = b.registry
	}
	addr = meta.RegistryAddr(addr)
	r := &svcregResolver{target: t, cc: cc, noServiceConfig: opts.DisableServiceConfig,
		notify: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	w, err := b.pool.subscribe(addr, t.Namespace, t.Service, r.notify)
	if err != nil {
		return nil, err
	}
	r.w = w
	r.release = func() { b.pool.unsubscribe(addr, w, r.notify) }
	go r.run()
	return r, nil
}

// svcregResolver is one ClientConn's resolver. Its goroutine turns the
// shared watch's latest view into the ClientConn's state whenever the view
// changes; a slow ClientConn only delays itself.
type svcregResolver struct {
	target          Target
	cc              resolver.ClientConn
	noServiceConfig bool
	w               *serviceWatch
	notify          chan struct{} // 1-buffered: the view changed
	done            chan struct{} // closed by Close
	exited          chan struct{} // closed when run returns
	closeOnce       sync.Once
	release         func()
}

// ResolveNow asks for a fresh look: the shared watch opens a new stream
// now, resuming from its revision (the channel calls this when a
// connection fails, in bursts: they coalesce), and this ClientConn gets
// the current state again.
func (r *svcregResolver) ResolveNow(resolver.ResolveNowOptions) {
	r.w.ew.Resync()
	r.nudge()
}

func (r *svcregResolver) nudge() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Close stops the goroutine and waits for it: after Close, the resolver
// never calls the ClientConn.
func (r *svcregResolver) Close() {
	r.closeOnce.Do(func() {
		close(r.done)
		<-r.exited
		r.release()
	})
}

// run publishes the shared watch's view whenever it changes. A state the
// ClientConn refuses (UpdateState's error: the policy rejected it) is
// published again after a backoff, as grpc-go's DNS resolver re-resolves.
func (r *svcregResolver) run() {
	defer close(r.exited)
	var lastSC string
	var parsed *serviceconfig.ParseResult
	bo := endpointwatch.NewBackoff()
	var retry clock.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-r.done:
			return
		case <-r.notify:
		}
		state, ok := r.state(&lastSC, &parsed)
		if !ok {
			continue
		}
		if err := r.cc.UpdateState(state); err != nil {
			if retry != nil {
				retry.Stop()
			}
			retry = clock.Get().AfterFunc(bo.Next(), r.nudge)
			continue
		}
		bo.Reset()
	}
}

// state is the ClientConn state of the watch's current view; false when
// there is none to publish (an error was reported instead).
func (r *svcregResolver) state(lastSC *string, parsed **serviceconfig.ParseResult) (resolver.State, bool) {
	view, synced, werr := r.w.current()
	if !synced {
		if werr != nil {
			// A plain error, not a status: wait-for-ready RPCs keep waiting.
			r.cc.ReportError(fmt.Errorf("svcreg: registry %s unreachable: %v", r.w.conn.addr, status.Convert(werr).Message()))
		}
		return resolver.State{}, false
	}
	if view.Service == nil {
		r.cc.UpdateState(resolver.State{})
		r.cc.ReportError(fmt.Errorf("service %s.%s not found", r.target.Service, r.target.Namespace))
		return resolver.State{}, false
	}
	eps, err := r.w.endpoints(r.target, view)
	if err != nil {
		r.cc.ReportError(err)
		return resolver.State{}, false
	}
	state := resolver.State{Endpoints: eps}
	if !r.noServiceConfig {
		if js := ServiceConfigJSON(view.Service); js != *lastSC || *parsed == nil {
			*lastSC, *parsed = js, r.cc.ParseServiceConfig(js)
		}
		state.ServiceConfig = *parsed
	}
	return state, true
}

// pool shares registry connections and service watches.
type pool struct {
	dial     []grpc.DialOption
	creds    clientauth.Config
	locality servicemodel.Locality // where this client runs
	// minRevision is WithMinRevision's (nil: none).
	minRevision func() int64
	// mu guards conns and each registryConn's watches. Lock order: pool.mu
	// before serviceWatch.mu, never the other way.
	mu    sync.Mutex
	conns map[string]*registryConn
}

type registryConn struct {
	addr    string
	conn    *grpc.ClientConn
	client  svcregv1grpc.RegistryServiceClient
	watches map[string]*serviceWatch // namespace/service
}

// serviceWatch is one WatchEndpoints stream shared by every resolver of a
// service, keeping the latest view.
type serviceWatch struct {
	conn    *registryConn
	ew      *endpointwatch.Watch
	key     string
	cancel  context.CancelFunc
	stopped chan struct{}

	mu     sync.Mutex
	subs   map[chan struct{}]bool
	view   endpointwatch.View
	synced bool
	err    error // the last connection error
	// recovering: after a registry restart, until its view has endpoints
	// again or restartGrace passed, the previous view stays published.
	recovering time.Time
	held       *endpointwatch.View // the latest view held back meanwhile

	locality servicemodel.Locality // the client's, for topology

	// built caches the resolver endpoints of the current view per target
	// port: the ClientConns of a service share one computation per change.
	built map[Target]builtEndpoints
}

type builtEndpoints struct {
	rev int64
	eps []resolver.Endpoint
	err error
}

// endpoints returns the view's endpoints for t, computed once per view
// and target (the slice is shared and never modified).
func (w *serviceWatch) endpoints(t Target, view endpointwatch.View) ([]resolver.Endpoint, error) {
	key := Target{PortName: t.PortName, Port: t.Port, Service: t.Service, Namespace: t.Namespace}
	w.mu.Lock()
	if b, ok := w.built[key]; ok && b.rev == view.Revision && view.Revision != 0 {
		w.mu.Unlock()
		return b.eps, b.err
	}
	w.mu.Unlock()
	eps, err := endpointsFor(t, view, w.locality)
	w.mu.Lock()
	if w.built == nil || w.view.Revision != view.Revision {
		w.built = map[Target]builtEndpoints{}
	}
	w.built[key] = builtEndpoints{view.Revision, eps, err}
	w.mu.Unlock()
	return eps, err
}

// restartGrace is how long a registry that restarted without its state
// (no durability) gets for its instances to register again before the
// resolver believes an empty service. Registrations renew at a third of
// their TTL, so they are back within one renewal interval.
var restartGrace = 30 * time.Second

func (p *pool) subscribe(addr, namespace, service string, notify chan struct{}) (*serviceWatch, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rc := p.conns[addr]
	if rc == nil {
		dial, err := p.creds.DialOptions(addr)
		if err != nil {
			return nil, err
		}
		conn, err := grpc.NewClient(addr, append(dial, p.dial...)...)
		if err != nil {
			return nil, err
		}
		rc = &registryConn{addr: addr, conn: conn, client: svcregv1grpc.NewRegistryServiceClient(conn), watches: map[string]*serviceWatch{}}
		p.conns[addr] = rc
	}
	key := meta.Key(namespace, service)
	w := rc.watches[key]
	if w == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w = &serviceWatch{conn: rc, key: key, locality: p.locality, cancel: cancel, stopped: make(chan struct{}), subs: map[chan struct{}]bool{}}
		w.ew = endpointwatch.New(rc.client, namespace, service, w.failed)
		w.ew.MinRevision = p.minRevision
		rc.watches[key] = w
		go w.run(ctx)
	}
	w.mu.Lock()
	w.subs[notify] = true
	w.mu.Unlock()
	select {
	case notify <- struct{}{}: // publish what the watch already has
	default:
	}
	return w, nil
}

func (p *pool) unsubscribe(addr string, w *serviceWatch, notify chan struct{}) {
	p.mu.Lock()
	w.mu.Lock()
	delete(w.subs, notify)
	last := len(w.subs) == 0
	w.mu.Unlock()
	var closeConn *grpc.ClientConn
	if last {
		delete(w.conn.watches, w.key)
		w.cancel()
		if len(w.conn.watches) == 0 {
			delete(p.conns, addr)
			closeConn = w.conn.conn
		}
	}
	p.mu.Unlock()
	if last {
		<-w.stopped
	}
	if closeConn != nil {
		closeConn.Close()
	}
}

func (w *serviceWatch) run(ctx context.Context) {
	defer close(w.stopped)
	err := w.ew.Follow(ctx,
		func(v endpointwatch.View) {
			w.mu.Lock()
			if v.Restarted && w.synced {
				w.recovering = clock.Now()
				clock.Get().AfterFunc(restartGrace, w.endRecovery)
			}
			if !w.recovering.IsZero() && clock.Since(w.recovering) < restartGrace && !hasEndpoints(v) {
				w.held = &v
				w.mu.Unlock()
				return // keep serving the last view while instances come back
			}
			w.recovering, w.held = time.Time{}, nil
			w.view, w.synced, w.err = v, true, nil
			w.mu.Unlock()
			w.notifyAll()
		})
	if err != nil && !errors.Is(err, context.Canceled) {
		w.mu.Lock()
		w.err, w.synced = err, false
		w.mu.Unlock()
		w.notifyAll()
	}
}

// failed records a connection failure: resolvers report it until the
// watch has a view; once synced they keep the last state.
func (w *serviceWatch) failed(err error) {
	w.mu.Lock()
	w.err = err
	synced := w.synced
	w.mu.Unlock()
	if !synced {
		w.notifyAll()
	}
}

func (w *serviceWatch) notifyAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (w *serviceWatch) current() (endpointwatch.View, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.view, w.synced, w.err
}

// endRecovery publishes what was held back when the grace ends.
func (w *serviceWatch) endRecovery() {
	w.mu.Lock()
	held := w.held
	if held != nil && clock.Since(w.recovering) >= restartGrace {
		w.view, w.held, w.recovering = *held, nil, time.Time{}
	} else {
		held = nil
	}
	w.mu.Unlock()
	if held != nil {
		w.notifyAll()
	}
}

func hasEndpoints(v endpointwatch.View) bool {
	for _, ep := range v.Endpoints {
		if ep.GetReady() {
			return true
		}
	}
	return v.Service != nil && v.Service.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME
}
