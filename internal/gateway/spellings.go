// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/spelling"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/reason"
)

// The REST API takes what a Kubernetes user types (README, "API"):
// kubectl's enum spellings as aliases of svcreg's (ClusterIP for
// SERVICE_TYPE_CLUSTER_IP), a number for an IntOrString field (targetPort:
// 8080), a field's JSON name in another case ("clusterIP" for
// "clusterIp"); an enum value that is neither names the accepted ones; a
// body that names another namespace or object than its path, and a query
// parameter no method has, are refused rather than silently ignored.
//
// It is a gateway middleware: the gateway has matched the route, so the
// middleware knows its path parameters and, from the route's pattern, the
// message the body becomes (restBodies, read from the API's google.api.http
// options). The body is respelt against that message's descriptor: no URL
// is parsed twice, and every message and enum the API gains is covered
// without a table here.

// restBodies is, for each REST route with a body ("PATCH
// /v1/namespaces/{service.namespace}/services/{service.name}"), the message
// its body decodes into.
var restBodies = func() map[string]protoreflect.MessageDescriptor {
	bodies := map[string]protoreflect.MessageDescriptor{}
	for _, name := range servedServices {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			panic(err) // the generated code registers them
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
				method, template := httpRoute(r)
				switch {
				case r.GetBody() == "*":
					bodies[method+" "+template] = m.Input()
				case r.GetBody() != "":
					bodies[method+" "+template] = m.Input().Fields().ByName(protoreflect.Name(r.GetBody())).Message()
				}
			}
		}
	}
	return bodies
}()

// servedServices are the services the gateway serves.
var servedServices = []protoreflect.FullName{"svcreg.v1.RegistryService", "svcreg.v1.TokenService", "svcreg.v1.XDSService", "svcreg.v1.OperatorService"}

func httpRoute(r *annotations.HttpRule) (method, template string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	}
	return "", ""
}

// respellBodies applies the rules above to a body the gateway routed.
func respellBodies(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		pattern, _ := runtime.HTTPPattern(r.Context())
		// The gateway writes a capture as {name=*}; the API as {name}.
		md := restBodies[r.Method+" "+strings.ReplaceAll(pattern.String(), "=*}", "}")]
		if md == nil || r.Body == nil || r.Body == http.NoBody {
			next(w, r, params)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err == nil {
			body, err = respell(md, params, body)
		}
		if err != nil {
			writeHTTPError(r.Context(), nil, nil, w, r, err)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		next(w, r, params)
	}
}

// respell is body with Kubernetes' spellings turned into svcreg's, or an
// error: a value no spelling accepts (a field error), or a body that
// contradicts its path. A body that is not a JSON object is left to
// protojson, which says what is wrong with it.
func respell(md protoreflect.MessageDescriptor, params map[string]string, body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
		return body, nil
	}
	// The body is the field the path parameters are under (service, for
	// service.namespace), or the whole request ("*": namespace).
	prefix := ""
	for key := range params {
		if i := strings.IndexByte(key, '.'); i > 0 {
			prefix = key[:i]
		}
	}
	var errs validation.ErrorList
	respellMessage(md, obj, prefix, &errs)
	// After respelling: a name in another case is the same field.
	for _, key := range slices.Sorted(maps.Keys(params)) {
		field := strings.TrimPrefix(key, prefix+".")
		fd := md.Fields().ByName(protoreflect.Name(field))
		if fd == nil || strings.Contains(field, ".") {
			continue
		}
		got, _ := obj[fd.JSONName()].(string)
		if got == "" {
			got, _ = obj[string(fd.Name())].(string)
		}
		if want := params[key]; got != "" && got != want {
			return nil, apierror.WithDetails(codes.InvalidArgument, fmt.Sprintf("%s %.64q contradicts the path's %.64q: send one or the other",
				key, got, want), reason.FieldInvalid, nil)
		}
	}
	if len(errs) > 0 {
		return nil, apierror.ToStatus(errs)
	}
	return json.Marshal(obj)
}

// respellMessage walks one JSON object beside its message's descriptor.
func respellMessage(md protoreflect.MessageDescriptor, obj map[string]any, path string, errs *validation.ErrorList) {
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return // well-known types have JSON forms of their own
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		fd := fieldOf(md, key)
		if fd == nil {
			fd = foldedField(md, key)
			if fd == nil || obj[fd.JSONName()] != nil || obj[string(fd.Name())] != nil {
				continue // unknown, or sent twice: protojson refuses it
			}
			obj[fd.JSONName()] = obj[key]
			delete(obj, key)
			key = fd.JSONName()
		}
		fpath := string(fd.Name())
		if path != "" {
			fpath = path + "." + fpath
		}
		switch {
		case fd.IsMap():
			m, _ := obj[key].(map[string]any)
			for _, k := range slices.Sorted(maps.Keys(m)) {
				m[k] = respellValue(fd.MapValue(), m[k], fmt.Sprintf("%s[%s]", fpath, k), errs)
			}
		case fd.IsList():
			list, _ := obj[key].([]any)
			for i := range list {
				list[i] = respellValue(fd, list[i], fmt.Sprintf("%s[%d]", fpath, i), errs)
			}
		default:
			obj[key] = respellValue(fd, obj[key], fpath, errs)
		}
	}
}

// respellValue is one value of a field (an element, for a list or map).
func respellValue(fd protoreflect.FieldDescriptor, v any, path string, errs *validation.ErrorList) any {
	switch {
	case fd.Enum() != nil:
		s, ok := v.(string)
		if !ok {
			return v // a number, or null: protojson decides
		}
		if n, ok := spelling.Parse(fd.Enum(), s); ok {
			return string(fd.Enum().Values().ByNumber(n).Name())
		}
		k8s, ours := spelling.Accepted(fd.Enum())
		want := strings.Join(ours, ", ")
		if len(k8s) > 0 {
			want = fmt.Sprintf("%s (or %s)", strings.Join(k8s, ", "), want)
		}
		*errs = append(*errs, validation.Invalid(validation.Path(path), s, "want one of "+want))
	case fd.Message() != nil:
		if m, ok := v.(map[string]any); ok {
			respellMessage(fd.Message(), m, path, errs)
		}
	case spelling.IntOrString(fd):
		if n, ok := v.(json.Number); ok {
			return n.String() // kubectl's int-or-string
		}
	}
	return v
}

// fieldOf is the field a JSON key names, as protojson reads it: its JSON
// name or its proto name.
func fieldOf(md protoreflect.MessageDescriptor, key string) protoreflect.FieldDescriptor {
	if fd := md.Fields().ByJSONName(key); fd != nil {
		return fd
	}
	return md.Fields().ByName(protoreflect.Name(key))
}

// foldedField is the one field whose JSON name the key spells in another
// case (Kubernetes' clusterIP for clusterIp), if any.
func foldedField(md protoreflect.MessageDescriptor, key string) protoreflect.FieldDescriptor {
	var found protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		if strings.EqualFold(fields.Get(i).JSONName(), key) {
			if found != nil {
				return nil
			}
			found = fields.Get(i)
		}
	}
	return found
}

// queryParams are the parameters some REST method reads: every field of
// every request message of the services the gateway serves, as the
// gateway names them (JSON and proto spellings, and one level of nested
// "parent.child").
var queryParams = func() map[string]bool {
	known := map[string]bool{}
	for _, name := range servedServices {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			panic(err) // the generated code registers them
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			addFields(known, "", methods.Get(i).Input(), 2)
		}
	}
	return known
}()

func addFields(known map[string]bool, prefix string, msg protoreflect.MessageDescriptor, depth int) {
	fields := msg.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		for _, n := range []string{f.JSONName(), string(f.Name())} {
			known[prefix+n] = true
			if f.Message() != nil && depth > 1 {
				addFields(known, prefix+n+".", f.Message(), depth-1)
			}
		}
	}
}

// unknownQuery names the first query parameter no method reads.
func unknownQuery(r *http.Request) string {
	for p := range r.URL.Query() {
		if !queryParams[p] {
			return p
		}
	}
	return ""
}

// refuseUnknownQuery refuses a query parameter no method reads, before
// the gateway would ignore it.
func refuseUnknownQuery(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p := unknownQuery(r); p != "" {
			writeHTTPError(r.Context(), nil, nil, w, r, apierror.WithDetails(codes.InvalidArgument,
				fmt.Sprintf("unknown query parameter %.64q (labelSelector, pageSize, pageToken, resourceVersion and updateMask are the usual ones)", p),
				reason.FieldInvalid, nil))
			return
		}
		next(w, r, params)
	}
}

// jsonFieldPaths renames the field paths of a REST error's field
// violations, and in its messages, to the JSON names a REST client sent
// (service.cluster_ip -> service.clusterIp): protojson's names are the
// lower camel case of the proto names.
func jsonFieldPaths(st *status.Status) *status.Status {
	p := st.Proto()
	changed := false
	msg := p.GetMessage()
	for i, d := range p.GetDetails() {
		var br errdetails.BadRequest
		if d.MessageIs(&br) && d.UnmarshalTo(&br) == nil {
			for _, v := range br.GetFieldViolations() {
				js := jsonPath(v.GetField())
				if js == v.GetField() {
					continue
				}
				msg = strings.ReplaceAll(msg, v.GetField()+":", js+":")
				v.Description = strings.ReplaceAll(v.GetDescription(), v.GetField()+":", js+":")
				v.Field, changed = js, true
			}
			if a, err := anypb.New(&br); err == nil {
				p.Details[i] = a
			}
		}
	}
	if !changed {
		return st
	}
	p.Message = msg
	return status.FromProto(p)
}

// jsonPath is a field path with each snake_case name in lower camel case
// (indexes and map keys in brackets are kept).
func jsonPath(path string) string {
	var b strings.Builder
	upper, inBracket := false, false
	for _, r := range path {
		switch {
		case r == '[':
			inBracket = true
		case r == ']':
			inBracket = false
		case r == '_' && !inBracket:
			upper = true
			continue
		case upper:
			r, upper = unicode.ToUpper(r), false
		}
		b.WriteRune(r)
	}
	return b.String()
}
