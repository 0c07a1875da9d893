// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/reason"
)

// authServer is a registry with auth on, two namespaces ("own", the
// tokens' namespace, and "other") holding service web and instance web-1
// (registered by the bootstrap token), and a token per role.
type authServer struct {
	*testServer
	bearer map[string]string // principal name -> token ("" for none)
}

var principals = []string{"none", "bad", "revoked", "reader", "registrar", "admin", "operator"}

func startAuthServer(t testing.TB, cfg Config) *authServer {
	t.Helper()
	return startAuthServerWith(t, cfg, nil)
}

// startAuthServerWith is startAuthServer with a connection of its own
// (TLS) instead of the plaintext one.
func startAuthServerWith(t testing.TB, cfg Config, dial func(*Server) *grpc.ClientConn) *authServer {
	t.Helper()
	boot := auth.NewSecret()
	cfg.Security.Auth, cfg.Security.BootstrapToken = AuthOn, boot
	ts := startServer(t, cfg)
	if dial != nil {
		ts.conn = dial(ts.Server)
		t.Cleanup(func() { ts.conn.Close() })
		ts.client = svcregv1grpc.NewRegistryServiceClient(ts.conn)
	}
	as := &authServer{testServer: ts, bearer: map[string]string{"none": "", "bad": auth.NewSecret()}}
	ctx := as.as(boot)
	waitFor(t, "the bootstrap token", 10*time.Second, func() bool {
		_, err := svcregv1grpc.NewTokenServiceClient(as.conn).WhoAmI(ctx, &svcregv1.WhoAmIRequest{})
		return err == nil
	})
	for _, ns := range []string{"own", "other"} {
		svc, inst := webSvc(), webInst("web-1")
		svc.Namespace, inst.Namespace, inst.TtlSeconds = ns, ns, 60
		if _, err := as.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: svc}); err != nil {
			t.Fatal(err)
		}
		if _, err := as.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst}); err != nil {
			t.Fatal(err)
		}
	}
	for _, role := range []string{"reader", "registrar", "admin", "operator", "revoked"} {
		r := svcregv1.Role(svcregv1.Role_value["ROLE_"+strings.ToUpper(role)])
		if role == "revoked" {
			r = svcregv1.Role_ROLE_ADMIN
		}
		as.bearer[role] = as.createToken(t, ctx, r, "own")
	}
	if _, err := svcregv1grpc.NewTokenServiceClient(as.conn).RevokeToken(ctx, &svcregv1.RevokeTokenRequest{Accessor: as.bearer["revoked"]}); err != nil {
		t.Fatal(err)
	}
	as.bearer["bootstrap"] = boot
	// The server records its own addresses by a command of its own, once:
	// wait for it, so that the state compared around denied calls is the
	// tests' alone.
	waitFor(t, "the server to record its addresses", 10*time.Second, func() bool {
		_, err := as.store.Read().Node(as.node.ID())
		return err == nil
	})
	return as
}

func (as *authServer) createToken(t testing.TB, ctx context.Context, role svcregv1.Role, namespaces ...string) string {
	t.Helper()
	resp, err := svcregv1grpc.NewTokenServiceClient(as.conn).CreateToken(ctx, &svcregv1.CreateTokenRequest{Token: &svcregv1.Token{
		Roles: []*svcregv1.RoleBinding{{Role: role, Namespaces: namespaces}}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetSecret()
}

// as is a context that calls with a bearer token ("" for none).
func (as *authServer) as(token string) context.Context {
	if token == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func (as *authServer) dump(t testing.TB) string {
	t.Helper()
	var b bytes.Buffer
	if err := as.store.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// rpcCase is one RPC, called in a namespace, and its REST route if it has
// one.
type rpcCase struct {
	method string
	action auth.Action // 0: any valid credential (WhoAmI)
	// owned: a registrar may call it only on its own instances (web-1 is
	// the bootstrap token's: NOT_OWNER).
	owned bool
	// anyNamespace: it reads across namespaces and answers with what the
	// caller may read (Resolve): allowed to every valid credential.
	anyNamespace bool
	// everyNamespace: it reads every namespace at once (xDS): allowed to a
	// reader of "*" alone.
	everyNamespace bool
	call           func(ctx context.Context, as *authServer, ns string) error
	rest           func(ns string) (method, path, body string)
}

var unique atomic.Int64

func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, unique.Add(1)) }

func rpcCases() []rpcCase {
	reg := func(as *authServer) svcregv1grpc.RegistryServiceClient { return as.client }
	op := func(as *authServer) svcregv1grpc.OperatorServiceClient {
		return svcregv1grpc.NewOperatorServiceClient(as.conn)
	}
	tok := func(as *authServer) svcregv1grpc.TokenServiceClient {
		return svcregv1grpc.NewTokenServiceClient(as.conn)
	}
	return []rpcCase{
		{method: "CreateService", action: auth.WriteService, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{Name: uniqueName("svc"), Namespace: ns}})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "POST", "/v1/namespaces/" + ns + "/services", `{"name":"` + uniqueName("svc") + `"}`
		}},
		{method: "GetService", action: auth.Read, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).GetService(ctx, &svcregv1.GetServiceRequest{Namespace: ns, Name: "web"})
			return err
		}, rest: func(ns string) (string, string, string) { return "GET", "/v1/namespaces/" + ns + "/services/web", "" }},
		{method: "ListServices", action: auth.Read, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).ListServices(ctx, &svcregv1.ListServicesRequest{Namespace: ns})
			return err
		}, rest: func(ns string) (string, string, string) { return "GET", "/v1/namespaces/" + ns + "/services", "" }},
		{method: "UpdateService", action: auth.WriteService, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).UpdateService(ctx, &svcregv1.UpdateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: ns,
				Labels: map[string]string{"touched": uniqueName("x")}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}}})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "PATCH", "/v1/namespaces/" + ns + "/services/web?updateMask=labels", `{"labels":{"touched":"` + uniqueName("x") + `"}}`
		}},
		{method: "DeleteService", action: auth.WriteService, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).DeleteService(ctx, &svcregv1.DeleteServiceRequest{Namespace: ns, Name: "absent"})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "DELETE", "/v1/namespaces/" + ns + "/services/absent", ""
		}},
		{method: "CreateInstance", action: auth.WriteInstance, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{Name: uniqueName("inst"), Namespace: ns, Ip: "10.1.0.1"}})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "POST", "/v1/namespaces/" + ns + "/instances", `{"name":"` + uniqueName("inst") + `","ip":"10.1.0.2"}`
		}},
		{method: "GetInstance", action: auth.Read, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: ns, Name: "web-1"})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "GET", "/v1/namespaces/" + ns + "/instances/web-1", ""
		}},
		{method: "ListInstances", action: auth.Read, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).ListInstances(ctx, &svcregv1.ListInstancesRequest{Namespace: ns})
			return err
		}, rest: func(ns string) (string, string, string) { return "GET", "/v1/namespaces/" + ns + "/instances", "" }},
		{method: "UpdateInstance", action: auth.WriteInstance, owned: true, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-1", Namespace: ns,
				Labels: map[string]string{"app": "web", "touched": uniqueName("x")}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}}})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "PATCH", "/v1/namespaces/" + ns + "/instances/web-1?updateMask=labels", `{"labels":{"app":"web","touched":"` + uniqueName("x") + `"}}`
		}},
		{method: "DeleteInstance", action: auth.WriteInstance, owned: true, call: func(ctx context.Context, as *authServer, ns string) error {
			// A precondition that never holds: allowed callers get ABORTED,
			// and web-1 stays for the other cases.
			_, err := reg(as).DeleteInstance(ctx, &svcregv1.DeleteInstanceRequest{Namespace: ns, Name: "web-1", Etag: `"no-such-etag"`})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "DELETE", "/v1/namespaces/" + ns + "/instances/web-1?etag=%22no-such-etag%22", ""
		}},
		{method: "ListEndpoints", action: auth.Read, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).ListEndpoints(ctx, &svcregv1.ListEndpointsRequest{Namespace: ns, Service: "web"})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "GET", "/v1/namespaces/" + ns + "/services/web/endpoints", ""
		}},
		{method: "ReplaceEndpoints", action: auth.WriteService, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).ReplaceEndpoints(ctx, &svcregv1.ReplaceEndpointsRequest{Namespace: ns, Service: "absent"})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "PUT", "/v1/namespaces/" + ns + "/services/absent/endpoints", `{}`
		}},
		{method: "WatchEndpoints", action: auth.Read, call: func(ctx context.Context, as *authServer, ns string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := reg(as).WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: ns, Service: "web"})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		}},
		{method: "Watch", action: auth.Read, call: func(ctx context.Context, as *authServer, ns string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := reg(as).Watch(ctx, &svcregv1.WatchRequest{Namespace: ns})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		}},
		{method: "ReportProbeResult", action: auth.WriteService, call: func(ctx context.Context, as *authServer, ns string) error {
			// web-1 has no probe: allowed callers get FAILED_PRECONDITION.
			_, err := reg(as).ReportProbeResult(ctx, &svcregv1.ReportProbeResultRequest{Namespace: ns, Name: "web-1", Uid: "u", Ready: true, Prober: "agent/n"})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "POST", "/v1/namespaces/" + ns + "/instances/web-1:reportProbe", `{"uid":"u","ready":true,"prober":"agent/n"}`
		}},
		{method: "RenewInstanceLease", action: auth.WriteInstance, owned: true, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: ns, Name: "web-1"})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "POST", "/v1/namespaces/" + ns + "/instances/web-1:renew", `{}`
		}},
		{method: "KeepAlive", action: auth.WriteInstance, owned: true, call: func(ctx context.Context, as *authServer, ns string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := reg(as).KeepAlive(ctx)
			if err == nil {
				// Send reports io.EOF when the server has already ended the
				// stream; Recv then returns its status.
				if err = st.Send(&svcregv1.KeepAliveRequest{Namespace: ns, Name: "web-1"}); err == nil || err == io.EOF {
					_, err = st.Recv()
				}
			}
			return err
		}},
		{method: "Resolve", action: auth.Read, anyNamespace: true, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).Resolve(ctx, &svcregv1.ResolveRequest{Name: "web." + ns + ".svc.cluster.local"})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "GET", "/v1/resolve?name=web." + ns + ".svc.cluster.local", ""
		}},
		{method: "GetEnvironment", action: auth.Read, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := reg(as).GetEnvironment(ctx, &svcregv1.GetEnvironmentRequest{Namespace: ns})
			return err
		}, rest: func(ns string) (string, string, string) { return "GET", "/v1/namespaces/" + ns + "/environment", "" }},
		{method: "ListPeers", action: auth.Operate, call: func(ctx context.Context, as *authServer, _ string) error {
			_, err := op(as).ListPeers(ctx, &svcregv1.ListPeersRequest{})
			return err
		}},
		{method: "RemovePeer", action: auth.Operate, call: func(ctx context.Context, as *authServer, _ string) error {
			_, err := op(as).RemovePeer(ctx, &svcregv1.RemovePeerRequest{Id: "nobody"})
			return err
		}},
		{method: "TransferLeader", action: auth.Operate, call: func(ctx context.Context, as *authServer, _ string) error {
			_, err := op(as).TransferLeader(ctx, &svcregv1.TransferLeaderRequest{Id: "nobody"})
			return err
		}},
		{method: "SaveSnapshot", action: auth.Operate, call: func(ctx context.Context, as *authServer, _ string) error {
			st, err := op(as).SaveSnapshot(ctx, &svcregv1.SaveSnapshotRequest{})
			for err == nil {
				_, err = st.Recv()
			}
			if err == io.EOF {
				return nil
			}
			return err
		}},
		{method: "RestoreSnapshot", action: auth.Operate, call: func(ctx context.Context, as *authServer, _ string) error {
			st, err := op(as).RestoreSnapshot(ctx)
			if err == nil {
				if err = st.Send(&svcregv1.RestoreSnapshotRequest{Data: []byte("not a snapshot")}); err == nil || err == io.EOF {
					_, err = st.CloseAndRecv()
				}
			}
			return err
		}},
		{method: "CreateToken", action: auth.Operate, call: func(ctx context.Context, as *authServer, ns string) error {
			_, err := tok(as).CreateToken(ctx, &svcregv1.CreateTokenRequest{Token: &svcregv1.Token{
				Roles: []*svcregv1.RoleBinding{{Role: svcregv1.Role_ROLE_READER, Namespaces: []string{ns}}}}})
			return err
		}, rest: func(ns string) (string, string, string) {
			return "POST", "/v1/tokens", `{"token":{"roles":[{"role":"ROLE_READER","namespaces":["` + ns + `"]}]}}`
		}},
		{method: "ListTokens", action: auth.Operate, call: func(ctx context.Context, as *authServer, _ string) error {
			_, err := tok(as).ListTokens(ctx, &svcregv1.ListTokensRequest{})
			return err
		}, rest: func(string) (string, string, string) { return "GET", "/v1/tokens", "" }},
		{method: "RevokeToken", action: auth.Operate, call: func(ctx context.Context, as *authServer, _ string) error {
			_, err := tok(as).RevokeToken(ctx, &svcregv1.RevokeTokenRequest{Accessor: "absent"})
			return err
		}, rest: func(string) (string, string, string) { return "DELETE", "/v1/tokens/absent", "" }},
		{method: "StreamAggregatedResources", action: auth.Read, everyNamespace: true, call: func(ctx context.Context, as *authServer, _ string) error {
			return adsRound(ctx, as, false)
		}},
		{method: "DeltaAggregatedResources", action: auth.Read, everyNamespace: true, call: func(ctx context.Context, as *authServer, _ string) error {
			return adsRound(ctx, as, true)
		}},
		{method: "ListXDSClients", action: auth.Read, everyNamespace: true, call: func(ctx context.Context, as *authServer, _ string) error {
			_, err := svcregv1grpc.NewXDSServiceClient(as.conn).ListXDSClients(ctx, &svcregv1.ListXDSClientsRequest{})
			return err
		}, rest: func(string) (string, string, string) { return "GET", "/v1/xds/clients", "" }},
		{method: "WhoAmI", call: func(ctx context.Context, as *authServer, _ string) error {
			_, err := tok(as).WhoAmI(ctx, &svcregv1.WhoAmIRequest{})
			return err
		}, rest: func(string) (string, string, string) { return "GET", "/v1/whoami", "" }},
	}
}

// adsRound asks the ADS for every Listener (a wildcard request, answered
// at once) over a state-of-the-world or a delta stream, and returns the
// stream's verdict.
func adsRound(ctx context.Context, as *authServer, delta bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := discoveryv3.NewAggregatedDiscoveryServiceClient(as.conn)
	if delta {
		st, err := c.DeltaAggregatedResources(ctx)
		if err == nil {
			if err = st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType}); err == nil || err == io.EOF {
				_, err = st.Recv()
			}
		}
		return err
	}
	st, err := c.StreamAggregatedResources(ctx)
	if err == nil {
		if err = st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType}); err == nil || err == io.EOF {
			_, err = st.Recv()
		}
	}
	return err
}

// allowed is the roles table of docs/security.md, written out again here
// independently of auth.Authorize.
func allowed(principal string, action auth.Action, ownNamespace bool) bool {
	switch principal {
	case "operator":
		return true
	case "admin":
		return action != auth.Operate && ownNamespace || action == 0
	case "registrar":
		return (action == auth.Read || action == auth.WriteInstance) && ownNamespace || action == 0
	case "reader":
		return action == auth.Read && ownNamespace || action == 0
	}
	return false
}

// expectation is the code a case must get, or "any code but these two".
func expectation(c rpcCase, principal, ns string) (want codes.Code, why string) {
	switch {
	case principal == "none" || principal == "bad" || principal == "revoked":
		return codes.Unauthenticated, reason.Unauthenticated
	case !allowed(principal, c.action, ns == "own" || c.anyNamespace):
		return codes.PermissionDenied, reason.PermissionDenied
	case c.everyNamespace && principal != "operator":
		return codes.PermissionDenied, reason.PermissionDenied
	case c.owned && principal == "registrar":
		return codes.PermissionDenied, reason.NotOwner
	}
	return codes.OK, ""
}

// TestAuthorizationMatrix: every RPC, over gRPC and over its REST route,
// by every kind of caller, in its own namespace and in another: denied
// calls get exactly UNAUTHENTICATED (401) or PERMISSION_DENIED (403) and
// change nothing; allowed calls get neither.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, Config{})
	httpCodes := map[codes.Code]int{codes.Unauthenticated: http.StatusUnauthorized, codes.PermissionDenied: http.StatusForbidden}
	for _, c := range rpcCases() {
		for _, principal := range principals {
			for _, ns := range []string{"own", "other"} {
				if (c.action == auth.Operate || c.action == 0 || c.everyNamespace) && ns == "other" {
					continue // cluster-wide: no namespace
				}
				want, why := expectation(c, principal, ns)
				name := fmt.Sprintf("%s/%s/%s", c.method, principal, ns)
				before := as.dump(t)
				err := c.call(as.as(as.bearer[principal]), as, ns)
				got := status.Code(err)
				switch {
				case want == codes.OK && (got == codes.Unauthenticated || got == codes.PermissionDenied):
					t.Errorf("%s: %v, want it allowed", name, err)
				case want != codes.OK && (got != want || reason.Of(err) != why):
					t.Errorf("%s: %v, want %v (%s)", name, err, want, why)
				case want != codes.OK && as.dump(t) != before:
					t.Errorf("%s: denied, but the state changed", name)
				}
				if c.rest == nil {
					continue
				}
				method, path, body := c.rest(ns)
				before = as.dump(t)
				code, hdr := as.restAs(t, as.bearer[principal], method, path, body)
				switch {
				case want == codes.OK && (code == http.StatusUnauthorized || code == http.StatusForbidden):
					t.Errorf("REST %s %s as %s: %d, want it allowed", method, path, principal, code)
				case want != codes.OK && code != httpCodes[want]:
					t.Errorf("REST %s %s as %s: %d, want %d", method, path, principal, code, httpCodes[want])
				case want != codes.OK && as.dump(t) != before:
					t.Errorf("REST %s %s as %s: denied, but the state changed", method, path, principal)
				case code == http.StatusUnauthorized && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer"):
					t.Errorf("REST %s %s as %s: 401 without WWW-Authenticate: Bearer", method, path, principal)
				}
			}
		}
	}
}

func (as *authServer) restAs(t testing.TB, token, method, path, body string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, as.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// TestRulesNameEveryMethod: every method the client port and the REST
// gateway serve has a rule (a method without one is denied, so a new RPC
// cannot ship unguarded and unnoticed), and every rule names a method
// that exists.
func TestRulesNameEveryMethod(t *testing.T) {
	as := startAuthServer(t, Config{})
	served := map[string]bool{}
	for name, info := range as.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			served["/"+name+"/"+m.Name] = true
		}
	}
	for name, info := range as.rest.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			served["/"+name+"/"+m.Name] = true
		}
	}
	for m := range served {
		if _, ok := rules[m]; !ok {
			t.Errorf("%s is served but has no rule", m)
		}
	}
	for m := range rules {
		if !served[m] {
			t.Errorf("the rule for %s names a method not served", m)
		}
	}
	tested := map[string]bool{}
	for _, c := range rpcCases() {
		tested[c.method] = true
	}
	for m, r := range rules {
		name := m[strings.LastIndex(m, "/")+1:]
		if !r.public && !tested[name] {
			t.Errorf("%s is not in the authorization matrix", m)
		}
	}
}

// TestListsAcrossNamespacesShowOnlyReadable: a reader of "own" listing or
// watching "-" sees own's objects and nothing of "other"; Resolve does not
// answer for other's names.
func TestListsAcrossNamespacesShowOnlyReadable(t *testing.T) {
	as := startAuthServer(t, Config{})
	ctx := as.as(as.bearer["reader"])
	svcs, err := as.client.ListServices(ctx, &svcregv1.ListServicesRequest{Namespace: "-"})
	if err != nil {
		t.Fatal(err)
	}
	insts, err := as.client.ListInstances(ctx, &svcregv1.ListInstancesRequest{Namespace: "-"})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, s := range svcs.GetServices() {
		seen = append(seen, "svc "+s.GetNamespace()+"/"+s.GetName())
	}
	for _, i := range insts.GetInstances() {
		seen = append(seen, "inst "+i.GetNamespace()+"/"+i.GetName())
	}
	if want := []string{"svc own/web", "inst own/web-1"}; !slices.Equal(seen, want) {
		t.Errorf("a reader of own listing everything sees %v, want %v", seen, want)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := as.client.Watch(wctx, &svcregv1.WatchRequest{Namespace: "-"})
	if err != nil {
		t.Fatal(err)
	}
	var snapshot []string
	for {
		ev, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetType() == svcregv1.EventType_EVENT_TYPE_SYNCED {
			break
		}
		snapshot = append(snapshot, ev.GetService().GetNamespace()+ev.GetInstance().GetNamespace())
	}
	// A change in other, then one in own: only own's arrives.
	boot := as.as(as.bearer["bootstrap"])
	for _, ns := range []string{"other", "own"} {
		if _, err := as.client.CreateInstance(boot, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{Name: "web-2", Namespace: ns, Ip: "10.0.0.2"}}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.GetInstance().GetNamespace(); got != "own" || slices.ContainsFunc(snapshot, func(ns string) bool { return ns != "own" }) {
		t.Errorf("a reader of own watching everything got %v then an event in %q", snapshot, got)
	}

	for ns, want := range map[string]string{"own": "NOERROR", "other": "NXDOMAIN"} {
		resp, err := as.client.Resolve(ctx, &svcregv1.ResolveRequest{Name: "web." + ns + ".svc.cluster.local"})
		if err != nil || resp.GetRcode() != want {
			t.Errorf("Resolve web.%s as a reader of own: %v %v, want %s", ns, resp.GetRcode(), err, want)
		}
	}
}

// TestRegistrarOwnsWhatItRegisters: a registrar updates, renews and
// deletes the instances it created, and no other registrar's.
func TestRegistrarOwnsWhatItRegisters(t *testing.T) {
	as := startAuthServer(t, Config{})
	boot := as.as(as.bearer["bootstrap"])
	mine := as.as(as.bearer["registrar"])
	theirs := as.as(as.createToken(t, boot, svcregv1.Role_ROLE_REGISTRAR, "own"))
	inst := &svcregv1.Instance{Name: "mine", Namespace: "own", Ip: "10.0.0.9", TtlSeconds: 30}
	created, err := as.client.CreateInstance(mine, &svcregv1.CreateInstanceRequest{Instance: inst})
	if err != nil {
		t.Fatal(err)
	}
	if created.GetInstance().GetOwner() == "" {
		t.Errorf("the instance records no owner")
	}
	patch := &svcregv1.UpdateInstanceRequest{Instance: &svcregv1.Instance{Name: "mine", Namespace: "own", Ready: proto.Bool(false)},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ready"}}}
	renew := &svcregv1.RenewInstanceLeaseRequest{Namespace: "own", Name: "mine"}
	del := &svcregv1.DeleteInstanceRequest{Namespace: "own", Name: "mine"}
	for _, who := range []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{{"another registrar", theirs, codes.PermissionDenied}, {"its registrar", mine, codes.OK}} {
		_, err1 := as.client.UpdateInstance(who.ctx, patch)
		_, err2 := as.client.RenewInstanceLease(who.ctx, renew)
		_, err3 := as.client.DeleteInstance(who.ctx, del)
		for i, err := range []error{err1, err2, err3} {
			if status.Code(err) != who.want {
				t.Errorf("%s, call %d: %v, want %v", who.name, i, err, who.want)
			}
		}
	}
}

// TestRevokedTokenEndsItsWatch: a watch whose token is revoked ends with
// UNAUTHENTICATED, at once (within a second), on the server it is open
// on.
func TestRevokedTokenEndsItsWatch(t *testing.T) {
	as := startAuthServer(t, Config{})
	boot := as.as(as.bearer["bootstrap"])
	secret := as.createToken(t, boot, svcregv1.Role_ROLE_READER, "own")
	ctx, cancel := context.WithCancel(as.as(secret))
	defer cancel()
	st, err := as.client.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: "own", Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	recvUntil(t, st, svcregv1.EventType_EVENT_TYPE_SYNCED)
	revoked := time.Now()
	endsUnauthenticated(t, st, "revoked", func() {
		if _, err := svcregv1grpc.NewTokenServiceClient(as.conn).RevokeToken(boot, &svcregv1.RevokeTokenRequest{Accessor: secret}); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("the watch ended %v after the revocation", time.Since(revoked))
}

// endsUnauthenticated does what ends a token (revoke, expire) while the
// stream is open, and checks that the stream then ends with
// UNAUTHENTICATED (the timeout is a bound on a failing test, not a
// measure: the end comes from an event).
func endsUnauthenticated(t *testing.T, st grpc.ServerStreamingClient[svcregv1.WatchEndpointsResponse], how string, end func()) {
	t.Helper()
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := st.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	end()
	select {
	case err := <-ended:
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("the watch ended with %v, want UNAUTHENTICATED", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the watch of a %s token is still open", how)
	}
}

// TestExpiredTokenEndsItsWatch: a token with an expiry works until then;
// at its expiry its open watch ends with UNAUTHENTICATED and new requests
// are refused (the clock is the test's).
func TestExpiredTokenEndsItsWatch(t *testing.T) {
	clock := clocktest.NewAt(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	as := startAuthServer(t, Config{Clock: clock})
	boot := as.as(as.bearer["bootstrap"])
	resp, err := svcregv1grpc.NewTokenServiceClient(as.conn).CreateToken(boot, &svcregv1.CreateTokenRequest{Token: &svcregv1.Token{
		ExpireTime: timestamppb.New(clock.Now().Add(time.Hour)),
		Roles:      []*svcregv1.RoleBinding{{Role: svcregv1.Role_ROLE_READER, Namespaces: []string{"own"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(as.as(resp.GetSecret()))
	defer cancel()
	st, err := as.client.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: "own", Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	recvUntil(t, st, svcregv1.EventType_EVENT_TYPE_SYNCED)
	endsUnauthenticated(t, st, "expired", func() { clock.Advance(time.Hour) })
	if _, err := as.client.GetService(as.as(resp.GetSecret()), &svcregv1.GetServiceRequest{Namespace: "own", Name: "web"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a request with the expired token: %v, want UNAUTHENTICATED", err)
	}
}

// TestUnknownTokenBeforeCaughtUp: a server that has not caught up with
// the cluster cannot tell an unknown token from one it has not applied
// yet: it answers NOT_READY (UNAVAILABLE, REST 503, retry), and
// UNAUTHENTICATED only once it has caught up. Before, a script got 401
// from a lagging server and threw its valid credential away.
func TestUnknownTokenBeforeCaughtUp(t *testing.T) {
	st, err := newStore(Config{ServiceCIDR: DefaultServiceCIDR, NodePortRange: DefaultNodePortRange})
	if err != nil {
		t.Fatal(err)
	}
	caughtUp := error(cluster.ErrNotReady)
	g := &guard{enabled: true, store: st, clock: clock.Real(), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		caughtUp: func() error { return caughtUp }}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer svcr_not-applied-here-yet-0123456789"))
	_, err = g.authenticate(ctx, portClient)
	if s := apierror.ToStatus(err); status.Code(s) != codes.Unavailable || reason.Of(s) != reason.NotReady {
		t.Errorf("an unknown token before catching up: %v, want UNAVAILABLE NOT_READY", s)
	}
	caughtUp = nil
	_, err = g.authenticate(ctx, portClient)
	if s := apierror.ToStatus(err); status.Code(s) != codes.Unauthenticated {
		t.Errorf("an unknown token once caught up: %v, want UNAUTHENTICATED", s)
	}
}
