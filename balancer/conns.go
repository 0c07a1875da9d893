package balancer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"

	"github.com/svcreg/svcreg/internal/clock"
)

// Conns schedules connections instead of RPCs, with the same schedulers,
// weights, thresholds, persistence and terminating fallback: the userspace
// proxy (svcreg proxy) picks a backend per accepted connection with it. A
// connection counts as active from Pick until its done is called, and then
// as inactive for the inactive window, so lc, wlc, sed and nq rank backends
// by real open connections, as the kernel's IPVS does (docs/ipvs.md).
//
// The hashing schedulers and persistence key on the client address the
// caller passes to Pick (ipvsadm's source address).
type Conns struct {
	mu      sync.Mutex
	st      *state
	cur     atomic.Pointer[picker]
	stop    chan struct{}
	ticking bool
	closed  bool
}

// ConnBackend is one backend of a Conns.
type ConnBackend struct {
	Addr string // host:port
	Info EndpointInfo
}

// ErrNoBackend is Pick's error when no backend can take a connection.
var ErrNoBackend = errors.New("no backend available: none is ready, or every one is quiesced or overloaded")

// NewConns returns a connection scheduler with cfg (see ParseConfig) and
// no backends.
func NewConns(cfg *Config) *Conns {
	return &Conns{st: newState(cfg, clock.Get()), stop: make(chan struct{})}
}

// Update replaces the configuration (nil keeps it) and the backends.
// Connections picked before keep counting against their backend until
// done, even if it left.
func (c *Conns) Update(cfg *Config, backends []ConnBackend) {
	views := make([]endpointView, len(backends))
	for i, b := range backends {
		views[i] = endpointView{addr: b.Addr, info: b.Info, ready: true, child: connChild{connSubConn{addr: b.Addr}}}
	}
	slices.SortStableFunc(views, func(a, b endpointView) int { return strings.Compare(a.addr, b.addr) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if cfg != nil {
		c.st.configure(cfg)
	}
	c.cur.Store(buildPicker(c.st, views))
	if !c.ticking && c.st.tickInterval() > 0 {
		c.ticking = true
		go tickLoop(&c.mu, c.st, c.stop)
	}
}

// Pick chooses the backend for a new connection from client (its address:
// the key of sh, mh, dh, lblc, lblcr and persistence). done must be called
// once the connection closes.
func (c *Conns) Pick(client string) (addr string, done func(), err error) {
	p := c.cur.Load()
	if p == nil {
		return "", nil, ErrNoBackend
	}
	res, err := p.Pick(balancer.PickInfo{FullMethodName: "/", Ctx: WithRequestKey(context.Background(), client)})
	if err != nil {
		return "", nil, ErrNoBackend
	}
	d := res.Done
	return res.SubConn.(connSubConn).addr, func() {
		if d != nil {
			d(balancer.DoneInfo{})
		}
	}, nil
}

// Close stops the scheduler's ticker.
func (c *Conns) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
}

// connSubConn carries a backend's address through the picker, where the
// gRPC balancer has a SubConn.
type connSubConn struct {
	balancer.SubConn
	addr string
}

// connChild is a backend's picker: always its own address.
type connChild struct{ sc connSubConn }

func (c connChild) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: c.sc}, nil
}
