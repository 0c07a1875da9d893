// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package kubeapi serves the registry as Kubernetes' discovery API: v1
// Services, Endpoints and Namespaces and discovery.k8s.io/v1
// EndpointSlices, with list and watch as kube-apiserver serves them, so
// that kubectl, client-go informers, CoreDNS's kubernetes plugin and
// kube-proxy read svcreg unmodified (docs/kubernetes.md). The objects are
// k8s.io/api's types, derived from svcreg's by the rules in objects.go;
// a Cache follows the watch hub and keeps them and their changes; the
// handler only parses, authorizes and encodes.
package kubeapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clock"
)

// Access is what the registry's guard decided about a request.
type Access struct {
	// Visible says which namespaces the caller may read; nil: every one.
	Visible func(namespace string) bool
	// Context ends when the caller's credential is revoked or expires (a
	// watch ends with it); nil: the request's.
	Context context.Context
	// Release, when set, is called when the request ends.
	Release func()
}

// Config is what the API serves from.
type Config struct {
	Cache *Cache
	// Access authenticates a request; its error is a Kubernetes status
	// error (apierrors: 401, 403, 503).
	Access func(r *http.Request) (Access, error)
	// Revision is the registry's revision now: a list or watch that asks
	// for the newest state waits until the cache reaches it.
	Revision func() int64
	// Ready fails while the server has not caught up with its cluster.
	Ready func() error
	Clock clock.Clock
	// Registry takes the writes (svcreg's own API, in process); nil:
	// read only.
	Registry svcregv1grpc.RegistryServiceClient
	// BookmarkInterval is how often a watch that allows bookmarks gets
	// one; 0 means a minute, as kube-apiserver.
	BookmarkInterval time.Duration
}

type handler struct{ Config }

// Handler serves /api, /apis and /version.
func Handler(cfg Config) http.Handler {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.BookmarkInterval <= 0 {
		cfg.BookmarkInterval = time.Minute
	}
	return &handler{cfg}
}

// maxWait bounds how long a read waits for the cache (kube-apiserver's
// "Too large resource version" wait is 3 s; the registry's reads wait 5 s).
const maxWait = 5 * time.Second

// request is a parsed path: which resource, namespace and name.
type request struct {
	res       *resource
	namespace string
	name      string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/version" {
		h.version(w, r)
		return
	}
	acc, err := h.Access(r)
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	if acc.Release != nil {
		defer acc.Release()
	}
	if acc.Context == nil {
		acc.Context = r.Context()
	}
	if h.discovery(w, r) {
		return
	}
	req, err := parsePath(r.URL.Path)
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	if r.Method != http.MethodGet {
		h.serveWrite(w, r, req) // the registry's guard authorizes it
		return
	}
	if req.namespace != "" && acc.Visible != nil && !acc.Visible(req.namespace) {
		writeStatus(w, r, apierrors.NewForbidden(req.res.gvr.GroupResource(), req.name,
			fmt.Errorf("the token may not read namespace %q", req.namespace)))
		return
	}
	if err := h.Ready(); err != nil {
		writeStatus(w, r, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	opts := metav1.ListOptions{}
	if err := parameters.DecodeParameters(r.URL.Query(), req.res.gvr.GroupVersion(), &opts); err != nil {
		writeStatus(w, r, apierrors.NewBadRequest(err.Error()))
		return
	}
	sel, err := newSelection(req, opts, acc.Visible)
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	switch {
	case opts.Watch:
		h.watch(w, r, acc, sel, opts)
	case req.name != "":
		h.get(w, r, sel)
	default:
		h.list(w, r, sel, opts)
	}
}

// parsePath reads /api/v1/[namespaces/NS/]RESOURCE[/NAME] and
// /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME].
func parsePath(path string) (request, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var gv schema.GroupVersion
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		gv, parts = schema.GroupVersion{Version: parts[1]}, parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		gv, parts = schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:]
	default:
		return request{}, apierrors.NewNotFound(schema.GroupResource{}, path)
	}
	var req request
	if len(parts) >= 3 && parts[0] == "namespaces" {
		req.namespace, parts = parts[1], parts[2:]
	}
	if len(parts) > 2 || parts[0] == "" {
		return request{}, apierrors.NewNotFound(schema.GroupResource{Group: gv.Group}, path)
	}
	req.res = lookup(gv, parts[0])
	if req.res == nil {
		return request{}, apierrors.NewNotFound(schema.GroupResource{Group: gv.Group, Resource: parts[0]}, "")
	}
	if len(parts) == 2 {
		req.name = parts[1]
	}
	if req.res.namespaced && req.namespace == "" && req.name != "" || !req.res.namespaced && req.namespace != "" {
		return request{}, apierrors.NewNotFound(req.res.gvr.GroupResource(), req.name)
	}
	return req, nil
}

// selection is which objects a request is about.
type selection struct {
	request
	visible func(string) bool
	labels  labels.Selector
	fields  fields.Selector
}

func newSelection(req request, opts metav1.ListOptions, visible func(string) bool) (*selection, error) {
	s := &selection{request: req, visible: visible, labels: labels.Everything(), fields: fields.Everything()}
	var err error
	if s.labels, err = labels.Parse(opts.LabelSelector); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("labelSelector: %v", err))
	}
	if s.fields, err = fields.ParseSelector(opts.FieldSelector); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("fieldSelector: %v", err))
	}
	known := req.res.fieldSet(req.res.empty())
	for _, f := range s.fields.Requirements() {
		if _, ok := known[f.Field]; !ok {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("fieldSelector: field label not supported: %s", f.Field))
		}
	}
	return s, nil
}

// matches reports whether the selection takes obj.
func (s *selection) matches(obj metav1.Object) bool {
	if s.namespace != "" && obj.GetNamespace() != s.namespace && s.res.namespaced {
		return false
	}
	if s.name != "" && obj.GetName() != s.name {
		return false
	}
	if s.visible != nil && !s.visible(visibleName(s.res, obj)) {
		return false
	}
	return s.labels.Matches(labels.Set(obj.GetLabels())) && s.fields.Matches(s.res.fieldSet(obj))
}

// visibleName is the namespace a reader needs to see obj: a Namespace is
// visible to the readers of itself, a Node (of every namespace's
// instances) to the readers of every namespace.
func visibleName(r *resource, obj metav1.Object) string {
	switch {
	case r.namespaced:
		return obj.GetNamespace()
	case r == &namespaces:
		return obj.GetName()
	}
	return "*"
}

// consistent waits until the cache holds the registry's newest state (a
// read that names no resourceVersion), or at least rev.
func (h *handler) consistent(ctx context.Context, rv string) error {
	want := int64(0) // "0": whatever the cache holds, once loaded
	switch rv {
	case "":
		want = h.Revision()
	case "0":
	default:
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("resourceVersion: %q is not a svcreg revision (a decimal number)", rv))
		}
		want = n
	}
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	if err := h.Cache.WaitFor(ctx, want); err != nil {
		if ctx.Err() != nil {
			return apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", want, h.Revision()), 1)
		}
		return apierrors.NewServiceUnavailable(err.Error())
	}
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, sel *selection) {
	if err := h.consistent(r.Context(), r.URL.Query().Get("resourceVersion")); err != nil {
		writeStatus(w, r, err)
		return
	}
	var found metav1.Object
	h.Cache.view(func(int64) {
		sel.res.each(h.Cache, func(o metav1.Object) {
			if found == nil && o.GetName() == sel.name && (!sel.res.namespaced || o.GetNamespace() == sel.namespace) {
				found = o
			}
		})
	})
	if found == nil {
		writeStatus(w, r, apierrors.NewNotFound(sel.res.gvr.GroupResource(), sel.name))
		return
	}
	if wantsTable(r) {
		write(w, r, http.StatusOK, metav1.SchemeGroupVersion, table(r, sel.res, []metav1.Object{found}, metav1.ListMeta{}))
		return
	}
	write(w, r, http.StatusOK, sel.res.gvr.GroupVersion(), found.(runtime.Object))
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, sel *selection, opts metav1.ListOptions) {
	skip, at, err := parseContinue(opts.Continue)
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	if err := h.checkMatch(opts); err != nil {
		writeStatus(w, r, err)
		return
	}
	if err := h.consistent(r.Context(), opts.ResourceVersion); err != nil {
		writeStatus(w, r, err)
		return
	}
	var items []metav1.Object
	var lm metav1.ListMeta
	h.Cache.view(func(rev int64) {
		if opts.Continue != "" && at != rev {
			err = apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. " +
				"You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. " +
				"svcreg keeps one revision: a paged list whose revision moved on lists again.")
			return
		}
		if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && opts.ResourceVersion != revisionString(rev) {
			err = apierrors.NewResourceExpired(fmt.Sprintf("svcreg serves the current revision only (%d), not %s", rev, opts.ResourceVersion))
			return
		}
		lm.ResourceVersion = revisionString(rev)
		n := 0
		sel.res.each(h.Cache, func(o metav1.Object) {
			if !sel.matches(o) {
				return
			}
			n++
			if n <= skip {
				return
			}
			if opts.Limit > 0 && int64(len(items)) == opts.Limit {
				lm.Continue = continueToken(rev, n-1)
				return
			}
			items = append(items, o)
		})
		if lm.Continue != "" {
			remaining := int64(n - skip - len(items))
			lm.RemainingItemCount = &remaining
		}
	})
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	if wantsTable(r) {
		write(w, r, http.StatusOK, metav1.SchemeGroupVersion, table(r, sel.res, items, lm))
		return
	}
	write(w, r, http.StatusOK, sel.res.gvr.GroupVersion(), sel.res.list(items, lm))
}

// checkMatch refuses what kube-apiserver refuses of resourceVersionMatch.
func (h *handler) checkMatch(opts metav1.ListOptions) error {
	switch opts.ResourceVersionMatch {
	case "", metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("resourceVersionMatch: Unsupported value: %q: supported values: %q, %q",
			opts.ResourceVersionMatch, metav1.ResourceVersionMatchExact, metav1.ResourceVersionMatchNotOlderThan))
	}
	if opts.ResourceVersionMatch != "" && opts.ResourceVersion == "" {
		return apierrors.NewBadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	if opts.ResourceVersionMatch != "" && opts.Continue != "" {
		return apierrors.NewBadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided")
	}
	return nil
}

// A continue token is the revision the list was read at and how many
// matching objects came before: the next page is served only at the same
// revision (the same state), else 410 and the client lists again.
func continueToken(rev int64, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d/%d", rev, offset)))
}

func parseContinue(token string) (offset int, rev int64, err error) {
	if token == "" {
		return 0, 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		_, err = fmt.Sscanf(string(raw), "%d/%d", &rev, &offset)
	}
	if err != nil || offset < 0 || rev <= 0 {
		return 0, 0, apierrors.NewBadRequest("continue: not a continue token of this server")
	}
	return offset, rev, nil
}
