// Package proxy is svcreg proxy, the node agent that makes cluster IPs
// and node ports real (docs/proxy.md), as kube-proxy does: it follows
// every service and its endpoints, and programs a data plane: userspace
// (a listener per service port that picks a backend per connection with
// the service's own scheduler) or nftables (DNAT rules in the kernel).
package proxy

import (
	"context"
	"log/slog"
	"maps"
	"sync"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/servicemodel"
	"github.com/svcreg/svcreg/reason"
)

// catalog follows the registry: one watch of every service, and one
// endpoint watch (the SDK's resuming one) per service a data plane
// serves. It keeps the last state while the registry is away.
type catalog struct {
	reg svcregv1.RegistryServiceClient
	log *slog.Logger

	mu      sync.Mutex
	views   map[string]endpointwatch.View // by namespace/name
	follows map[string]context.CancelFunc
	changed chan struct{} // 1-buffered: views changed
	// listed: the first list of services arrived, and every service in it
	// has its first view. Before, nothing is announced: a data plane
	// programmed from part of the registry would drop frontends an agent
	// restarted under running connections still serves.
	listed   bool
	complete bool // the first list of services was reconciled
}

func newCatalog(reg svcregv1.RegistryServiceClient, log *slog.Logger) *catalog {
	return &catalog{reg: reg, log: log, views: map[string]endpointwatch.View{}, follows: map[string]context.CancelFunc{},
		changed: make(chan struct{}, 1)}
}

// snapshot is the current views, a copy.
func (c *catalog) snapshot() map[string]endpointwatch.View {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.views)
}

func (c *catalog) notify() {
	c.mu.Lock()
	if !c.listed {
		c.listed = c.complete && len(c.views) == len(c.follows)
		if !c.listed {
			c.mu.Unlock()
			return
		}
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// run follows the services until ctx ends: it lists them (a Watch's
// snapshot), then applies changes; after an error it resumes from the
// last revision, or lists again when the registry cannot resume.
func (c *catalog) run(ctx context.Context) {
	defer c.stopAll()
	var rev int64
	bo := endpointwatch.NewBackoff()
	for ctx.Err() == nil {
		err := c.watchServices(ctx, &rev, bo)
		if ctx.Err() != nil {
			return
		}
		switch reason.Of(err) {
		case reason.ResourceVersionTooOld, reason.ResourceVersionAhead:
			rev = 0 // list again
			continue
		}
		c.log.Warn("watching the registry's services; keeping the last state and retrying", "err", err)
		if clock.Sleep(ctx, bo.Next()) != nil {
			return
		}
	}
}

func (c *catalog) watchServices(ctx context.Context, rev *int64, bo *endpointwatch.Backoff) error {
	st, err := c.reg.Watch(ctx, &svcregv1.WatchRequest{Namespace: meta.AllNamespaces, ResourceVersion: *rev,
		Kinds: []svcregv1.ObjectKind{svcregv1.ObjectKind_OBJECT_KIND_SERVICE}})
	if err != nil {
		return err
	}
	var listed map[string]*svcregv1.Service // during a snapshot
	if *rev == 0 {
		listed = map[string]*svcregv1.Service{}
	}
	for {
		ev, err := st.Recv()
		if err != nil {
			return err
		}
		bo.Reset()
		svc := ev.GetService()
		switch ev.GetType() {
		case svcregv1.EventType_EVENT_TYPE_SYNCED:
			*rev = ev.GetResourceVersion()
			if listed != nil {
				c.reconcile(ctx, listed)
				listed = nil
			}
		case svcregv1.EventType_EVENT_TYPE_BOOKMARK:
			*rev = max(*rev, ev.GetResourceVersion())
		case svcregv1.EventType_EVENT_TYPE_DELETED:
			*rev = max(*rev, ev.GetResourceVersion())
			c.unfollow(meta.Key(svc.GetNamespace(), svc.GetName()))
		default:
			if listed != nil {
				listed[meta.Key(svc.GetNamespace(), svc.GetName())] = svc
				continue
			}
			*rev = max(*rev, ev.GetResourceVersion())
			c.apply(ctx, svc)
		}
	}
}

// reconcile makes the followed set the listed one.
func (c *catalog) reconcile(ctx context.Context, listed map[string]*svcregv1.Service) {
	c.mu.Lock()
	var gone []string
	for key := range c.follows {
		if svc, ok := listed[key]; !ok || !servicemodel.Proxied(svc) {
			gone = append(gone, key)
		}
	}
	c.mu.Unlock()
	for _, key := range gone {
		c.unfollow(key)
	}
	for _, svc := range listed {
		c.apply(ctx, svc)
	}
	c.mu.Lock()
	c.complete = true
	c.mu.Unlock()
	c.notify()
}

// apply follows a service that is proxied, and stops following one that
// no longer is.
func (c *catalog) apply(ctx context.Context, svc *svcregv1.Service) {
	key := meta.Key(svc.GetNamespace(), svc.GetName())
	if !servicemodel.Proxied(svc) {
		c.unfollow(key)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.follows[key]; ok {
		return // its endpoint watch carries the service's changes
	}
	fctx, cancel := context.WithCancel(ctx)
	c.follows[key] = cancel
	w := endpointwatch.New(c.reg, svc.GetNamespace(), svc.GetName(), func(err error) {
		c.log.Warn("watching a service's endpoints; keeping the last state and retrying", "service", key, "err", err)
	})
	go func() {
		err := w.Follow(fctx, func(v endpointwatch.View) {
			c.mu.Lock()
			if fctx.Err() == nil {
				c.views[key] = v
			}
			c.mu.Unlock()
			c.notify()
		})
		if err != nil && fctx.Err() == nil {
			c.log.Error("following a service's endpoints stopped", "service", key, "err", err)
		}
	}()
}

func (c *catalog) unfollow(key string) {
	c.mu.Lock()
	if cancel, ok := c.follows[key]; ok {
		cancel() // under the lock: its watch can no longer store a view
	}
	delete(c.follows, key)
	_, had := c.views[key]
	delete(c.views, key)
	c.mu.Unlock()
	if had {
		c.notify()
	}
}

func (c *catalog) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cancel := range c.follows {
		cancel()
	}
}
