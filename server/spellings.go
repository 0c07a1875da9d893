package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/spelling"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/reason"
)

// The REST API takes what a Kubernetes user types (README, "API"):
// kubectl's enum spellings as aliases of svcreg's (ClusterIP for
// SERVICE_TYPE_CLUSTER_IP), a number as a targetPort, "clusterIP" for
// "clusterIp"; an enum value that is neither names the accepted ones; a
// body that names another namespace or object than its path, and a query
// parameter no method has, are refused rather than silently ignored.

// enumField is an enum-valued field of a service or instance body; its
// values' Kubernetes spellings come from their one table
// (internal/spelling).
type enumField struct{ enum protoreflect.EnumDescriptor }

var (
	serviceTypeField = enumField{svcregv1.ServiceType(0).Descriptor()}
	affinityField    = enumField{svcregv1.SessionAffinity(0).Descriptor()}
	protocolField    = enumField{svcregv1.Protocol(0).Descriptor()}
)

// respell rewrites value in place to svcreg's spelling, or reports the
// accepted ones.
func (f enumField) respell(path string, obj map[string]any, key string) *validation.Error {
	v, ok := obj[key].(string)
	if !ok {
		return nil // absent, or a number: protojson decides
	}
	if n, ok := spelling.Parse(f.enum, v); ok {
		obj[key] = string(f.enum.Values().ByNumber(n).Name())
		return nil
	}
	k8s, ours := spelling.Accepted(f.enum)
	return validation.Invalid(validation.Path(path+"."+key), v,
		fmt.Sprintf("want one of %s (or %s)", strings.Join(k8s, ", "), strings.Join(ours, ", ")))
}

// objectRoute is the kind ("service" or "instance"), namespace and name
// (empty for a create) of a write whose body is that object.
func objectRoute(r *http.Request) (kind, namespace, name string, ok bool) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
		return "", "", "", false
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/namespaces/"), "/")
	if len(parts) < 2 || len(parts) > 3 || !strings.HasPrefix(r.URL.Path, "/v1/namespaces/") {
		return "", "", "", false
	}
	switch parts[1] {
	case "services":
		kind = "service"
	case "instances":
		kind = "instance"
	default:
		return "", "", "", false
	}
	if len(parts) == 3 {
		if strings.Contains(parts[2], ":") { // a custom verb (:renew): not an object body
			return "", "", "", false
		}
		name = parts[2]
	}
	return kind, parts[0], name, true
}

// respellBody is the body with Kubernetes' spellings turned into svcreg's,
// or an error: a value no spelling accepts (a field error), or a body that
// contradicts its path. A body that is not a JSON object is left to the
// gateway, which says what is wrong with it.
func respellBody(kind, namespace, name string, body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return body, nil
	}
	for field, want := range map[string]string{"namespace": namespace, "name": name} {
		if got, ok := obj[field].(string); ok && got != "" && want != "" && got != want {
			return nil, withDetails(codes.InvalidArgument, fmt.Sprintf("%s.%s %.64q contradicts the path's %.64q: send one or the other",
				kind, field, got, want), reason.FieldInvalid, nil)
		}
	}
	var errs validation.ErrorList
	if kind == "service" {
		if v, ok := obj["clusterIP"]; ok {
			if _, both := obj["clusterIp"]; !both {
				obj["clusterIp"] = v
				delete(obj, "clusterIP")
			}
		}
		errs = appendErr(errs, serviceTypeField.respell(kind, obj, "type"))
		errs = appendErr(errs, affinityField.respell(kind, obj, "sessionAffinity"))
	}
	ports, _ := obj["ports"].([]any)
	for i, p := range ports {
		port, ok := p.(map[string]any)
		if !ok {
			continue
		}
		path := fmt.Sprintf("%s.ports[%d]", kind, i)
		errs = appendErr(errs, protocolField.respell(path, port, "protocol"))
		if n, ok := port["targetPort"].(json.Number); ok && kind == "service" {
			port["targetPort"] = n.String() // kubectl's int-or-string
		}
	}
	if len(errs) > 0 {
		return nil, toStatus(errs)
	}
	return json.Marshal(obj)
}

func appendErr(list validation.ErrorList, e *validation.Error) validation.ErrorList {
	if e != nil {
		list = append(list, e)
	}
	return list
}

// queryParams are the parameters some REST method reads: every field of
// every request message of the services the gateway serves, as the
// gateway names them (JSON and proto spellings, and one level of nested
// "parent.child").
var queryParams = func() map[string]bool {
	known := map[string]bool{}
	for _, name := range []protoreflect.FullName{"svcreg.v1.RegistryService", "svcreg.v1.TokenService", "svcreg.v1.XDSService"} {
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

// spellings applies the rules above before the gateway sees a request.
func (h httpHandler) spellings(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := unknownQuery(r); p != "" {
			writeHTTPError(r.Context(), nil, nil, w, r, withDetails(codes.InvalidArgument,
				fmt.Sprintf("unknown query parameter %.64q (labelSelector, pageSize, pageToken, resourceVersion and updateMask are the usual ones)", p),
				reason.FieldInvalid, nil))
			return
		}
		kind, ns, name, ok := objectRoute(r)
		if !ok || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeHTTPError(r.Context(), nil, nil, w, r, err)
			return
		}
		if body, err = respellBody(kind, ns, name, body); err != nil {
			writeHTTPError(r.Context(), nil, nil, w, r, err)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		next.ServeHTTP(w, r)
	})
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
