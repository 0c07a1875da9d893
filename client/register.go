// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/endpointwatch"
	"github.com/svcreg/svcreg/reason"
)

// Registration keeps one instance registered: it renews the instance's
// lease at a third of its TTL over a KeepAlive stream, and registers the
// instance again when the lease was lost (a long pause, a registry
// restart). Close drains it: the instance is marked terminating, so
// clients stop sending new RPCs, then deleted after a grace period.
type Registration struct {
	c       *Client
	ttl     time.Duration
	grace   time.Duration
	attempt time.Duration // each registration attempt's deadline
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}

	mu   sync.Mutex
	spec *svcregv1.Instance // what is kept registered, with its latest changes
	last *svcregv1.Instance // as the registry last returned it
	err  error              // the last renewal or registration error
}

// RegisterOption configures Register.
type RegisterOption func(*Registration)

// WithDrainGrace sets how long Close waits between marking the instance
// terminating and deleting it (default 2s): long enough for clients to
// learn of the drain before the instance stops taking RPCs.
func WithDrainGrace(d time.Duration) RegisterOption {
	return func(r *Registration) { r.grace = d }
}

// WithLogger sets where a registration says what goes wrong (a failed
// attempt and when it retries, a lost lease); default slog.Default().
func WithLogger(l *slog.Logger) RegisterOption {
	return func(r *Registration) { r.log = l }
}

// WithAttemptTimeout bounds each registration attempt (default 5s): a
// registry that is not there yet, or a partition, costs one attempt's
// timeout before the next try, never a silent wait.
func WithAttemptTimeout(d time.Duration) RegisterOption {
	return func(r *Registration) { r.attempt = d }
}

// Register registers inst with a lease of ttl (at least a second; rounded
// up to whole seconds) and keeps it alive until Close. It returns once the
// first registration succeeded, retrying with backoff until ctx ends. An
// instance of the same name is taken over (replaced).
func (c *Client) Register(ctx context.Context, inst *svcregv1.Instance, ttl time.Duration, opts ...RegisterOption) (*Registration, error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("svcreg: lease ttl %v: want at least 1s", ttl)
	}
	spec := proto.Clone(inst).(*svcregv1.Instance)
	spec.TtlSeconds = int32((ttl + time.Second - 1) / time.Second)
	spec.ResourceVersion, spec.Etag, spec.Uid, spec.CreateTime, spec.LeaseExpireTime = 0, "", "", nil, nil
	r := &Registration{c: c, ttl: time.Duration(spec.TtlSeconds) * time.Second, grace: 2 * time.Second, attempt: 5 * time.Second,
		log: slog.Default(), spec: spec, done: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	bo := endpointwatch.NewBackoff()
	for attempt := 1; ; attempt++ {
		err := r.register(ctx)
		if err == nil {
			if attempt > 1 {
				r.log.Info("svcreg: registered", "instance", spec.GetName(), "namespace", spec.GetNamespace(), "registry", c.addr, "attempts", attempt)
			}
			break
		}
		if reason.Of(err) == reason.FieldInvalid {
			return nil, err // retrying will not fix an invalid instance
		}
		wait := bo.Next()
		r.log.Warn("svcreg: registering failed; retrying", "instance", spec.GetName(), "namespace", spec.GetNamespace(),
			"registry", c.addr, "attempt", attempt, "retry_in", wait, "err", err)
		if clock.Sleep(ctx, wait) != nil {
			return nil, fmt.Errorf("svcreg: register %s: %w (last error: %v)", spec.GetName(), ctx.Err(), err)
		}
	}
	keepCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.keepAlive(keepCtx)
	return r, nil
}

// register creates the instance, replacing one of the same name.
func (r *Registration) register(ctx context.Context) error {
	r.mu.Lock()
	spec := proto.Clone(r.spec).(*svcregv1.Instance)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.attempt)
	defer cancel()
	resp, err := r.c.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: spec})
	if reason.Of(err) == reason.AlreadyExists {
		var up *svcregv1.UpdateInstanceResponse
		up, err = r.c.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: spec})
		if err == nil {
			resp = &svcregv1.CreateInstanceResponse{Instance: up.GetInstance()}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	if err == nil {
		r.last = resp.GetInstance()
	}
	return err
}

// keepAlive renews at ttl/3 and re-registers when the lease is gone.
func (r *Registration) keepAlive(ctx context.Context) {
	defer close(r.done)
	bo := endpointwatch.NewBackoff()
	for ctx.Err() == nil {
		err := r.renewLoop(ctx)
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		r.log.Warn("svcreg: keeping the registration alive failed; retrying", "instance", r.spec.GetName(), "registry", r.c.addr, "err", err)
		if errors.Is(err, errLeaseLost) {
			if r.register(ctx) == nil {
				bo.Reset()
				continue
			}
		}
		clock.Sleep(ctx, bo.Next())
	}
}

var errLeaseLost = errors.New("lease lost")

// renewLoop renews over one KeepAlive stream until it fails.
func (r *Registration) renewLoop(ctx context.Context) error {
	st, err := r.c.KeepAlive(ctx)
	if err != nil {
		return err
	}
	defer st.CloseSend()
	t := clock.Get().NewTicker(r.ttl / 3)
	defer t.Stop()
	ns, name := r.spec.GetNamespace(), r.spec.GetName()
	for {
		if err := st.Send(&svcregv1.KeepAliveRequest{Namespace: ns, Name: name}); err != nil {
			return err
		}
		resp, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("keepalive stream closed")
		}
		if err != nil {
			return err
		}
		if !resp.GetFound() {
			return errLeaseLost
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Chan():
		}
	}
}

// Instance is the instance as the registry last returned it.
func (r *Registration) Instance() *svcregv1.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Err is the last renewal or registration error (nil when healthy).
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// SetReady changes whether the instance takes traffic.
func (r *Registration) SetReady(ctx context.Context, ready bool) error {
	return r.update(ctx, func(i *svcregv1.Instance) { i.Ready = proto.Bool(ready) }, "ready")
}

// SetTerminating marks the instance as draining (or not).
func (r *Registration) SetTerminating(ctx context.Context, terminating bool) error {
	return r.update(ctx, func(i *svcregv1.Instance) { i.Terminating = terminating }, "terminating")
}

// SetWeight changes the instance's scheduling weight (0 quiesces it).
func (r *Registration) SetWeight(ctx context.Context, weight uint32) error {
	return r.update(ctx, func(i *svcregv1.Instance) { i.Weight = proto.Uint32(weight) }, "weight")
}

// update changes the kept spec and the registered instance; a lost
// instance is registered again with the change.
func (r *Registration) update(ctx context.Context, change func(*svcregv1.Instance), field string) error {
	r.mu.Lock()
	change(r.spec)
	patch := &svcregv1.Instance{Namespace: r.spec.GetNamespace(), Name: r.spec.GetName()}
	change(patch)
	r.mu.Unlock()
	resp, err := r.c.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: patch, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{field}}})
	if reason.Of(err) == reason.NotFound {
		return r.register(ctx)
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.last = resp.GetInstance()
	r.mu.Unlock()
	return nil
}

// Close drains and deregisters: marks the instance terminating, waits the
// grace period (or until ctx ends), stops renewing and deletes it.
func (r *Registration) Close(ctx context.Context) error {
	err := r.SetTerminating(ctx, true)
	if err == nil {
		clock.Sleep(ctx, r.grace)
	}
	r.cancel()
	<-r.done
	delCtx := context.WithoutCancel(ctx)
	delCtx, cancel := context.WithTimeout(delCtx, 5*time.Second)
	defer cancel()
	_, derr := r.c.DeleteInstance(delCtx, &svcregv1.DeleteInstanceRequest{Namespace: r.spec.GetNamespace(), Name: r.spec.GetName()})
	if reason.Of(derr) == reason.NotFound {
		derr = nil
	}
	return errors.Join(err, derr)
}

// Abandon stops renewing without deregistering, as a crash would: the
// instance disappears when its lease lapses. For tests and for handing an
// instance over.
func (r *Registration) Abandon() {
	r.cancel()
	<-r.done
}
