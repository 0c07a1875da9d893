// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package gateway

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/svcreg/svcreg/internal/admission"
)

type reservedConnKey struct{}

// ConnContext marks the requests of a connection from the health reserve
// (the HTTP server's ConnContext).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if admission.Reserved(c) {
		return context.WithValue(ctx, reservedConnKey{}, true)
	}
	return ctx
}

// admitHTTP is the REST port's admission: a connection from the health
// reserve answers /healthz and /readyz only (503 otherwise), and the API
// under /v1/ bounds each client's requests in flight (429), watches aside.
func (h handler) admitHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		health := r.URL.Path == "/healthz" || r.URL.Path == "/readyz"
		if reserved, _ := r.Context().Value(reservedConnKey{}).(bool); reserved && !health {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the server holds --max-connections connections: this connection serves /healthz and /readyz only; retry on a new one", http.StatusServiceUnavailable)
			return
		}
		// Watches (the paths ending in ":watch") have their own bounds.
		if h.InFlight != nil && strings.HasPrefix(r.URL.Path, "/v1/") && !strings.HasSuffix(r.URL.Path, ":watch") {
			client := clientOf(r.RemoteAddr)
			if !h.InFlight.Acquire(client) {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "this client has --max-requests-per-client requests in flight; retry once some have finished", http.StatusTooManyRequests)
				return
			}
			defer h.InFlight.Release(client)
		}
		next.ServeHTTP(w, r)
	})
}

func clientOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}
