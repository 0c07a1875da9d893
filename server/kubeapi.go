// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/kubeapi"
)

// kubernetesAPI is the Kubernetes discovery API on the HTTP port
// (docs/kubernetes.md): the same address, TLS and tokens as the REST API,
// so that a kubeconfig names the server once.
func (s *Server) kubernetesAPI() http.Handler {
	return kubeapi.Handler(kubeapi.Config{Cache: s.kubeCache, Access: s.guard.kubeAccess, Revision: s.store.Revision,
		Ready: s.node.CheckCaughtUp, Clock: s.cfg.Clock, BookmarkInterval: s.cfg.BookmarkInterval,
		Registry: svcregv1grpc.NewRegistryServiceClient(s.rest.conn)})
}

// kubeAccess is the guard of the Kubernetes API: a bearer token, as on the
// REST port, whose roles say which namespaces it reads; its watches end
// when the token is revoked or expires, as the gRPC streams do.
func (g *guard) kubeAccess(r *http.Request) (kubeapi.Access, error) {
	if !g.enabled {
		return kubeapi.Access{}, nil
	}
	p, err := g.authenticateHTTP(r)
	if err != nil {
		g.audit(r.Context(), nil, "kubernetes "+r.Method+" "+r.URL.Path, "", "", err)
		return kubeapi.Access{}, apierrors.NewUnauthorized(err.Error())
	}
	if p.Everything {
		return kubeapi.Access{}, nil
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	release := g.sessions.open(p, cancel)
	return kubeapi.Access{
		Visible: func(ns string) bool { return auth.CanRead(p, ns) },
		Context: ctx,
		Release: func() { release(); cancel(nil) },
	}, nil
}
