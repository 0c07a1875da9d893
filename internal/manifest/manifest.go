// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package manifest reads the documents `svcreg apply -f` takes and writes
// the ones `svcreg get -o yaml|json` prints.
//
// It reads svcreg's own documents (apiVersion svcreg.io/v1, kind Service,
// Instance or Endpoints, the JSON fields of the object, or of a
// ReplaceEndpointsRequest, beside them: what `get -o yaml` prints) and Kubernetes' as `kubectl get -o yaml` prints them: v1 Service,
// v1 Endpoints, discovery.k8s.io/v1 EndpointSlice, and v1 List of any of
// these, and v1 Pod (an instance, with its pod template's readinessProbe), in YAML (one or many documents) or JSON. Every Kubernetes field
// svcreg has is mapped (docs/console.md has the table); every other field
// is named in the object's warnings, never dropped silently.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

// APIVersion is svcreg's own documents' apiVersion.
const APIVersion = "svcreg.io/v1"

// Kinds of Object (meta.Kind; a selectorless service's endpoints are one
// object of kind KindEndpoints).
const (
	KindService   = meta.KindService
	KindInstance  = meta.KindInstance
	KindEndpoints = meta.KindEndpoint
)

// Object is one thing to apply: exactly one of Service, Instance and
// Endpoints is set.
type Object struct {
	Source    string // where it was read: "file.yaml", with "#N" for the Nth document or item
	Service   *svcregv1.Service
	Instance  *svcregv1.Instance
	Endpoints *Endpoints
	// Warnings name the fields of the document that svcreg ignored.
	Warnings []string
}

// Endpoints are the complete endpoints of a selectorless service, from
// Kubernetes v1 Endpoints or EndpointSlices (all slices of a service merged).
type Endpoints struct {
	Namespace, Service string
	Endpoints          []*svcregv1.Endpoint
}

// Kind is the object's kind.
func (o *Object) Kind() meta.Kind {
	switch {
	case o.Service != nil:
		return KindService
	case o.Instance != nil:
		return KindInstance
	default:
		return KindEndpoints
	}
}

// Namespace is the object's namespace, defaulted.
func (o *Object) Namespace() string {
	switch {
	case o.Service != nil:
		return meta.Namespace(o.Service.GetNamespace())
	case o.Instance != nil:
		return meta.Namespace(o.Instance.GetNamespace())
	default:
		return meta.Namespace(o.Endpoints.Namespace)
	}
}

// Name is the object's name (the service's, for endpoints).
func (o *Object) Name() string {
	switch {
	case o.Service != nil:
		return o.Service.GetName()
	case o.Instance != nil:
		return o.Instance.GetName()
	default:
		return o.Endpoints.Service
	}
}

// Limits of one read: a manifest is an operator's file, not a data stream.
const (
	MaxBytes     = 64 << 20
	MaxDocuments = 100000
)

// Decode reads every document of data (YAML or JSON, one or many) into
// objects, in order, then merges the endpoints of each service (several
// EndpointSlices make one set). source names data in errors and warnings.
func Decode(source string, data []byte) ([]Object, error) {
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("%s: %d bytes: at most %d", source, len(data), MaxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var objs []Object
	for n := 1; ; n++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", docSource(source, n), err)
		}
		if n > MaxDocuments {
			return nil, fmt.Errorf("%s: more than %d documents", source, MaxDocuments)
		}
		if doc == nil {
			continue // an empty document, as between two "---"
		}
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: a document is a mapping with apiVersion and kind, not %T", docSource(source, n), doc)
		}
		got, err := decodeDocument(docSource(source, n), m)
		if err != nil {
			return nil, err
		}
		objs = append(objs, got...)
	}
	return mergeEndpoints(objs), nil
}

func docSource(source string, n int) string { return fmt.Sprintf("%s#%d", source, n) }

// decodeDocument reads one document (a List gives many objects).
func decodeDocument(source string, m map[string]any) ([]Object, error) {
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	if apiVersion == "" || kind == "" {
		return nil, fmt.Errorf("%s: apiVersion and kind are required (%s with kind Service or Instance; v1 Service, Pod, Endpoints or List; discovery.k8s.io/v1 EndpointSlice)", source, APIVersion)
	}
	switch {
	case apiVersion == APIVersion && kind != "List":
		k, ok := meta.KindOfDocument(kind)
		if !ok {
			break
		}
		obj, err := decodeOwn(source, k, m)
		return []Object{obj}, err
	case apiVersion == "v1" && kind == "List", apiVersion == APIVersion && kind == "List":
		items, ok := m["items"].([]any)
		if m["items"] != nil && !ok {
			return nil, fmt.Errorf("%s: items: a list of documents", source)
		}
		var objs []Object
		for i, item := range items {
			im, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: items[%d]: a mapping with apiVersion and kind", source, i)
			}
			got, err := decodeDocument(fmt.Sprintf("%s items[%d]", source, i), im)
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
		}
		return objs, nil
	case apiVersion == "v1" && kind == "Service":
		obj, err := kubeService(source, m)
		return []Object{obj}, err
	case apiVersion == "v1" && kind == "Pod":
		obj, err := kubePod(source, m)
		return []Object{obj}, err
	case apiVersion == "v1" && kind == "Endpoints":
		obj, err := kubeEndpoints(source, m)
		return []Object{obj}, err
	case apiVersion == "discovery.k8s.io/v1" && kind == "EndpointSlice":
		obj, err := kubeEndpointSlice(source, m)
		return []Object{obj}, err
	}
	return nil, fmt.Errorf("%s: %s %s is not a kind svcreg applies (%s Service or Instance; v1 Service, Endpoints or List; discovery.k8s.io/v1 EndpointSlice)", source, apiVersion, kind, APIVersion)
}

// decodeOwn reads svcreg's own document: the object's JSON beside
// apiVersion and kind. Unknown fields are errors, as they are in the API.
func decodeOwn(source string, kind meta.Kind, m map[string]any) (Object, error) {
	fields := make(map[string]any, len(m))
	for k, v := range m {
		if k != "apiVersion" && k != "kind" {
			fields[k] = v
		}
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", source, err)
	}
	obj := Object{Source: source}
	var msg proto.Message
	var eps *svcregv1.ReplaceEndpointsRequest
	switch kind {
	case KindService:
		obj.Service = &svcregv1.Service{}
		msg = obj.Service
	case KindInstance:
		obj.Instance = &svcregv1.Instance{}
		msg = obj.Instance
	default:
		eps = &svcregv1.ReplaceEndpointsRequest{}
		msg = eps
	}
	if err := protojson.Unmarshal(raw, msg); err != nil {
		return Object{}, fmt.Errorf("%s: %s: %w", source, kind, err)
	}
	if eps != nil {
		obj.Endpoints = &Endpoints{Namespace: eps.GetNamespace(), Service: eps.GetService(), Endpoints: eps.GetEndpoints()}
	}
	return obj, nil
}

// mergeEndpoints makes one Endpoints object per service out of every
// EndpointSlice (and v1 Endpoints) of it, at the place of the first; an
// endpoint named twice (the same address in a slice and in an Endpoints)
// counts once.
func mergeEndpoints(objs []Object) []Object {
	first := map[string]int{}
	var out []Object
	for _, o := range objs {
		if o.Endpoints == nil {
			out = append(out, o)
			continue
		}
		key := meta.Key(o.Namespace(), o.Name())
		i, seen := first[key]
		if !seen {
			first[key] = len(out)
			out = append(out, o)
			continue
		}
		m := &out[i]
		for _, ep := range o.Endpoints.Endpoints {
			if !slices.ContainsFunc(m.Endpoints.Endpoints, func(e *svcregv1.Endpoint) bool { return e.GetInstance() == ep.GetInstance() }) {
				m.Endpoints.Endpoints = append(m.Endpoints.Endpoints, ep)
			}
		}
		m.Source += ", " + o.Source
		m.Warnings = append(m.Warnings, o.Warnings...)
	}
	return out
}

// Encode writes objects as svcreg's own documents: one YAML document, or
// a List of them when there are several (list forces a List); as JSON
// when asJSON.
func Encode(w io.Writer, msgs []proto.Message, list, asJSON bool) error {
	out, err := Documents(msgs, list)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(out)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return err
	}
	return enc.Close()
}

// Documents are msgs as Encode writes them, before encoding: one object's
// document, or (list, or not one object) a List of them. JSONPath
// templates run over this.
func Documents(msgs []proto.Message, list bool) (any, error) {
	docs := make([]any, len(msgs))
	for i, msg := range msgs {
		doc, err := document(msg)
		if err != nil {
			return nil, err
		}
		docs[i] = doc
	}
	if len(docs) == 1 && !list {
		return docs[0], nil
	}
	return map[string]any{"apiVersion": APIVersion, "kind": "List", "items": docs}, nil
}

// document is one object as svcreg's document: its JSON (the API's
// names, as protojson writes them) with apiVersion and kind.
func document(msg proto.Message) (map[string]any, error) {
	var kind meta.Kind
	switch msg.(type) {
	case *svcregv1.Service:
		kind = KindService
	case *svcregv1.Instance:
		kind = KindInstance
	case *svcregv1.ReplaceEndpointsRequest:
		kind = KindEndpoints
	default:
		return nil, fmt.Errorf("manifest: cannot write a %T", msg)
	}
	raw, err := protojson.Marshal(msg)
	if err != nil {
		return nil, err
	}
	doc := map[string]any{}
	// (int64 fields are JSON strings in protojson: float64 loses nothing.)
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	doc["apiVersion"], doc["kind"] = APIVersion, kind.Document()
	return doc, nil
}

// joinFields lists ignored fields for a warning.
func joinFields(fields []string) string { return strings.Join(fields, ", ") }
