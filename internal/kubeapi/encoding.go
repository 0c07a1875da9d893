// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubeapi

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// The Kubernetes types and their serializers (JSON, and Kubernetes'
// protobuf, which CoreDNS and kube-proxy ask for), from apimachinery: the
// wire forms are Kubernetes' own, not imitations.
var (
	scheme     = runtime.NewScheme()
	codecs     serializer.CodecFactory
	parameters runtime.ParameterCodec
)

func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(discoveryv1.AddToScheme(scheme))
	utilruntime.Must(networkingv1.AddToScheme(scheme))
	utilruntime.Must(apidiscoveryv2.AddToScheme(scheme))
	utilruntime.Must(metav1.AddMetaToScheme(scheme))
	codecs = serializer.NewCodecFactory(scheme)
	parameters = runtime.NewParameterCodec(scheme)
}

const (
	mediaJSON     = runtime.ContentTypeJSON
	mediaProtobuf = runtime.ContentTypeProtobuf
)

// negotiate picks the response's media type from Accept: Kubernetes'
// protobuf when the client lists it, else JSON (every client takes JSON;
// kube-apiserver answers 406 to what it cannot serve, svcreg answers JSON
// to "as=Table" too, which kubectl then prints itself).
func negotiate(r *http.Request) runtime.SerializerInfo {
	media := mediaJSON
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["as"] != "" {
			continue
		}
		if mt == mediaProtobuf {
			media = mediaProtobuf
			break
		}
		if mt == mediaJSON || mt == "*/*" || mt == "application/*" {
			break
		}
	}
	info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), media)
	return info
}

// write encodes obj as gv in the negotiated form.
func write(w http.ResponseWriter, r *http.Request, code int, gv schema.GroupVersion, obj runtime.Object) {
	info := negotiate(r)
	var buf bytes.Buffer
	if err := codecs.EncoderForVersion(info.Serializer, gv).Encode(forEncoding(obj), &buf); err != nil {
		writeStatus(w, r, apierrors.NewInternalError(err))
		return
	}
	w.Header().Set("Content-Type", info.MediaType)
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// forEncoding is a shallow copy of obj for an encoder to stamp: the
// versioning encoder sets the object's apiVersion and kind while it
// encodes, and the cache's objects are shared by every reader.
func forEncoding(obj runtime.Object) runtime.Object {
	v := reflect.ValueOf(obj).Elem()
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	return c.Interface().(runtime.Object)
}

// writeStatus answers an error as a Kubernetes Status.
func writeStatus(w http.ResponseWriter, r *http.Request, err error) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		st = apierrors.NewInternalError(err)
	}
	s := st.Status()
	s.Kind, s.APIVersion = "Status", "v1"
	write(w, r, int(s.Code), coreV1, &s)
}

// notServed is the 405 of every method this API does not serve.
func notServed(method, what string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusMethodNotAllowed,
		Reason: metav1.StatusReasonMethodNotAllowed,
		Message: fmt.Sprintf("%s is not served on %s: svcreg serves get, list and watch of services, endpoints, namespaces, nodes "+
			"and endpointslices, and create, update, patch and delete of services and of selectorless services' endpoints "+
			"(write the others through svcreg's own API: svcreg apply)", method, what)}}
}
