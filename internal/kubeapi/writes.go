// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

//lint:file-ignore SA1019 v1 Endpoints, deprecated in Kubernetes 1.33, is served on purpose: kube-proxy's and CoreDNS's older releases and many tools still read it

package kubeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/manifest"
)

// Writes: kubectl apply, replace, patch and delete of Services, and of the
// Endpoints of selectorless services. Each is a call of svcreg's own API
// (in process, with the caller's token), so the guard, validation,
// admission and Raft see a kubectl write as any other write; the objects
// are read as `svcreg apply` reads Kubernetes manifests (internal/manifest).

// lastApplied is kubectl's record of what it applied: kept, so that the
// next kubectl apply computes its three-way patch.
const lastApplied = corev1.LastAppliedConfigAnnotation

// writer is one write request.
type writer struct {
	h   *handler
	r   *http.Request
	req request
	ctx context.Context
	dry bool
}

func (h *handler) serveWrite(w http.ResponseWriter, r *http.Request, req request) {
	if h.Registry == nil || (req.res != &services && req.res != &endpoints) {
		writeStatus(w, r, notServed(r.Method, req.res.gvr.Resource))
		return
	}
	if req.namespace == "" || (req.name == "") != (r.Method == http.MethodPost) {
		writeStatus(w, r, notServed(r.Method, r.URL.Path))
		return
	}
	ctx := r.Context()
	if a := r.Header.Get("Authorization"); a != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", a)
	}
	wr := &writer{h: h, r: r, req: req, ctx: ctx, dry: slices.Contains(r.URL.Query()["dryRun"], metav1.DryRunAll)}
	var (
		obj      runtime.Object
		code     = http.StatusOK
		warnings []string
		err      error
	)
	switch r.Method {
	case http.MethodPost:
		obj, warnings, err = wr.put(true, nil)
		code = http.StatusCreated
	case http.MethodPut:
		obj, warnings, err = wr.put(false, nil)
	case http.MethodPatch:
		obj, warnings, err = wr.patch()
	case http.MethodDelete:
		obj, err = wr.delete()
	default:
		err = notServed(r.Method, req.res.gvr.Resource)
	}
	if err != nil {
		writeStatus(w, r, err)
		return
	}
	for _, warning := range warnings {
		w.Header().Add("Warning", fmt.Sprintf("299 - %q", warning))
	}
	write(w, r, code, req.res.gvr.GroupVersion(), obj)
}

// readBody decodes the request's object: JSON, YAML or protobuf, as its
// Content-Type says.
func (wr *writer) readBody() (runtime.Object, []byte, error) {
	body, err := io.ReadAll(wr.r.Body)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("reading the body: %v", err))
	}
	obj, gvk, err := codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the body is not a Kubernetes object: %v", err))
	}
	if want := wr.req.res.gvr.GroupVersion().WithKind(wr.req.res.kind); *gvk != want {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the body is a %s, not a %s", gvk, want))
	}
	return obj, body, nil
}

// put creates (POST) or replaces (PUT) the object in the body; patched,
// when set, is the object instead (a PATCH's result).
func (wr *writer) put(create bool, patched runtime.Object) (runtime.Object, []string, error) {
	obj := patched
	if obj == nil {
		var err error
		if obj, _, err = wr.readBody(); err != nil {
			return nil, nil, err
		}
	}
	m := obj.(metav1.Object)
	if m.GetNamespace() != "" && m.GetNamespace() != wr.req.namespace {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("metadata.namespace %q does not match the namespace of the request, %q", m.GetNamespace(), wr.req.namespace))
	}
	if !create && m.GetName() != wr.req.name {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("metadata.name %q does not match the name of the request, %q", m.GetName(), wr.req.name))
	}
	m.SetNamespace(wr.req.namespace)
	got, warnings, err := fromKubernetes(obj)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(err.Error())
	}
	if wr.req.res == &services {
		out, err := wr.putService(create, got.Service, m)
		return out, warnings, err
	}
	out, err := wr.putEndpoints(got.Endpoints)
	return out, warnings, err
}

func (wr *writer) putService(create bool, svc *svcregv1.Service, m metav1.Object) (runtime.Object, error) {
	if a := m.GetAnnotations()[lastApplied]; a != "" {
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		svc.Annotations[lastApplied] = a
	}
	gr := services.gvr.GroupResource()
	if create {
		resp, err := wr.h.Registry.CreateService(wr.ctx, &svcregv1.CreateServiceRequest{Service: svc, ValidateOnly: wr.dry})
		if err != nil {
			return nil, fromRegistry(err, gr, svc.GetName())
		}
		return Service(resp.GetService()), nil
	}
	if rv := m.GetResourceVersion(); rv != "" { // a precondition, as Kubernetes takes it
		if _, err := fmt.Sscan(rv, &svc.ResourceVersion); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("metadata.resourceVersion %q is not a svcreg revision", rv))
		}
	}
	resp, err := wr.h.Registry.UpdateService(wr.ctx, &svcregv1.UpdateServiceRequest{Service: svc, ValidateOnly: wr.dry})
	if err != nil {
		return nil, fromRegistry(err, gr, svc.GetName())
	}
	return Service(resp.GetService()), nil
}

// putEndpoints replaces a selectorless service's endpoints with the
// object's.
func (wr *writer) putEndpoints(eps *manifest.Endpoints) (runtime.Object, error) {
	gr := endpoints.gvr.GroupResource()
	svc, err := wr.h.Registry.GetService(wr.ctx, &svcregv1.GetServiceRequest{Namespace: wr.req.namespace, Name: eps.Service})
	if err != nil {
		return nil, fromRegistry(err, services.gvr.GroupResource(), eps.Service)
	}
	resp, err := wr.h.Registry.ReplaceEndpoints(wr.ctx, &svcregv1.ReplaceEndpointsRequest{Namespace: wr.req.namespace, Service: eps.Service,
		Endpoints: eps.Endpoints, ValidateOnly: wr.dry})
	if err != nil {
		return nil, fromRegistry(err, gr, eps.Service)
	}
	return Endpoints(svc.GetService(), resp.GetEndpoints(), resp.GetResourceVersion()), nil
}

// current reads the object as it is now, from the registry.
func (wr *writer) current() (runtime.Object, error) {
	resp, err := wr.h.Registry.GetService(wr.ctx, &svcregv1.GetServiceRequest{Namespace: wr.req.namespace, Name: wr.req.name})
	if err != nil {
		return nil, fromRegistry(err, wr.req.res.gvr.GroupResource(), wr.req.name)
	}
	if wr.req.res == &services {
		return Service(resp.GetService()), nil
	}
	eps, err := wr.h.Registry.ListEndpoints(wr.ctx, &svcregv1.ListEndpointsRequest{Namespace: wr.req.namespace, Service: wr.req.name})
	if err != nil {
		return nil, fromRegistry(err, wr.req.res.gvr.GroupResource(), wr.req.name)
	}
	return Endpoints(resp.GetService(), eps.GetEndpoints(), eps.GetResourceVersion()), nil
}

// patch applies a JSON merge patch, a strategic merge patch (client-side
// kubectl apply's) or a JSON patch to the object as it is, and writes the
// result with the read's revision as its precondition.
func (wr *writer) patch() (runtime.Object, []string, error) {
	cur, err := wr.current()
	if err != nil {
		return nil, nil, err
	}
	cur.GetObjectKind().SetGroupVersionKind(wr.req.res.gvr.GroupVersion().WithKind(wr.req.res.kind))
	original, err := json.Marshal(cur)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	body, err := io.ReadAll(wr.r.Body)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("reading the body: %v", err))
	}
	mt, _, _ := mime.ParseMediaType(wr.r.Header.Get("Content-Type"))
	var out []byte
	switch mt {
	case "application/merge-patch+json":
		out, err = jsonpatch.MergePatch(original, body)
	case "application/strategic-merge-patch+json":
		out, err = strategicpatch.StrategicMergePatch(original, body, cur)
	case "application/json-patch+json":
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(body); err == nil {
			out, err = p.Apply(original)
		}
	case "application/apply-patch+yaml":
		return nil, nil, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType,
			Reason: metav1.StatusReasonUnsupportedMediaType, Message: "server-side apply is not served by svcreg: use kubectl apply without --server-side (client-side apply)"}}
	default:
		return nil, nil, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType,
			Reason: metav1.StatusReasonUnsupportedMediaType, Message: fmt.Sprintf("the patch's Content-Type %q is not one of application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json", mt)}}
	}
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("applying the patch: %v", err))
	}
	patched, _, err := codecs.UniversalDeserializer().Decode(out, &schema.GroupVersionKind{}, nil)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the patched object: %v", err))
	}
	if m := patched.(metav1.Object); m.GetResourceVersion() == "" {
		m.SetResourceVersion(cur.(metav1.Object).GetResourceVersion())
	}
	return wr.put(false, patched)
}

// delete deletes a service, or a selectorless service's endpoints.
func (wr *writer) delete() (runtime.Object, error) {
	gr := wr.req.res.gvr.GroupResource()
	if wr.req.res == &services {
		if _, err := wr.h.Registry.DeleteService(wr.ctx, &svcregv1.DeleteServiceRequest{Namespace: wr.req.namespace, Name: wr.req.name, ValidateOnly: wr.dry}); err != nil {
			return nil, fromRegistry(err, gr, wr.req.name)
		}
	} else if _, err := wr.h.Registry.ReplaceEndpoints(wr.ctx, &svcregv1.ReplaceEndpointsRequest{Namespace: wr.req.namespace, Service: wr.req.name,
		ValidateOnly: wr.dry}); err != nil {
		return nil, fromRegistry(err, gr, wr.req.name)
	}
	return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
		Details: &metav1.StatusDetails{Name: wr.req.name, Group: gr.Group, Kind: wr.req.res.gvr.Resource}}, nil
}

// fromKubernetes reads a Kubernetes object as svcreg's manifests read it
// (the same fields, the same warnings for what svcreg does not keep),
// leaving out what the server itself sets on the objects it serves.
func fromKubernetes(obj runtime.Object) (manifest.Object, []string, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return manifest.Object{}, nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return manifest.Object{}, nil, err
	}
	delete(doc, "status")
	if md, ok := doc["metadata"].(map[string]any); ok {
		// lastApplied is kept apart (putService).
		for _, k := range []string{"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"} {
			delete(md, k)
		}
		if a, ok := md["annotations"].(map[string]any); ok {
			delete(a, lastApplied)
		}
	}
	if spec, ok := doc["spec"].(map[string]any); ok {
		// The defaults Service() fills in: not the writer's to set.
		if spec["ipFamilyPolicy"] == string(corev1.IPFamilyPolicySingleStack) {
			delete(spec, "ipFamilyPolicy")
		}
		delete(spec, "ipFamilies")
		if spec["externalTrafficPolicy"] == string(corev1.ServiceExternalTrafficPolicyCluster) {
			delete(spec, "externalTrafficPolicy")
		}
		ports, _ := spec["ports"].([]any)
		for _, p := range ports {
			if p, ok := p.(map[string]any); ok && p["targetPort"] == float64(0) {
				delete(p, "targetPort") // unset in the typed object: the port's own number
			}
		}
	}
	raw, err = json.Marshal(doc)
	if err != nil {
		return manifest.Object{}, nil, err
	}
	objs, err := manifest.Decode("request", raw)
	if err != nil {
		return manifest.Object{}, nil, errors.New(strings.TrimPrefix(err.Error(), "request#1: "))
	}
	if len(objs) != 1 {
		return manifest.Object{}, nil, fmt.Errorf("the body holds %d objects, not one", len(objs))
	}
	return objs[0], objs[0].Warnings, nil
}

// fromRegistry converts the registry's error (a gRPC status) to
// Kubernetes' status, keeping its message, which names the field and the
// limit.
func fromRegistry(err error, gr schema.GroupResource, name string) error {
	st := status.Convert(err)
	msg := st.Message()
	switch st.Code() {
	case codes.NotFound:
		return apierrors.NewNotFound(gr, name)
	case codes.AlreadyExists:
		return apierrors.NewAlreadyExists(gr, name)
	case codes.Aborted, codes.FailedPrecondition:
		return apierrors.NewConflict(gr, name, errors.New(msg))
	case codes.InvalidArgument, codes.OutOfRange:
		return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity,
			Reason: metav1.StatusReasonInvalid, Message: fmt.Sprintf("%s %q is invalid: %s", gr.String(), name, msg),
			Details: &metav1.StatusDetails{Name: name, Group: gr.Group, Kind: gr.Resource}}}
	case codes.PermissionDenied:
		return apierrors.NewForbidden(gr, name, errors.New(msg))
	case codes.Unauthenticated:
		return apierrors.NewUnauthorized(msg)
	case codes.Unavailable:
		return apierrors.NewServiceUnavailable(msg)
	case codes.ResourceExhausted:
		return apierrors.NewTooManyRequests(msg, 1)
	case codes.DeadlineExceeded:
		return apierrors.NewTimeoutError(msg, 1)
	}
	return apierrors.NewInternalError(errors.New(msg))
}
