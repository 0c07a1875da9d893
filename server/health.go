// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/cluster"
)

// health reports readiness (docs/durability.md, "Ready means complete"):
// gRPC health's overall status and /readyz say SERVING / 200 only while
// the node claims readiness; /healthz stays liveness (the process
// answers). One goroutine follows the node, so a health check costs a
// lookup.
type readiness struct {
	node   interface{ Ready() error }
	health *health.Server

	mu      sync.Mutex
	err     error // why not ready; nil when ready
	stopped bool
}

func newReadiness(n interface{ Ready() error }) *readiness {
	r := &readiness{node: n, health: health.NewServer(), err: fmt.Errorf("%w: starting", cluster.ErrNotReady)}
	r.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return r
}

// run follows the node's readiness until ctx ends.
func (r *readiness) run(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		r.check()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *readiness) check() {
	err := r.node.Ready()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	was := r.err == nil
	r.err = err
	if now := err == nil; now != was {
		status := healthpb.HealthCheckResponse_NOT_SERVING
		if now {
			status = healthpb.HealthCheckResponse_SERVING
		}
		r.health.SetServingStatus("", status)
	}
}

// shutdown turns everything NOT_SERVING for good.
func (r *readiness) shutdown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped, r.err = true, apierror.ErrShuttingDown
	r.health.Shutdown()
}

// serveReadyz is /readyz: 200 when ready, else 503 with the reason.
func (r *readiness) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	err := r.err
	r.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	w.Write([]byte("ok\n"))
}
