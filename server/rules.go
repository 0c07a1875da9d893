// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/meta"
)

// rule is what one RPC needs of its caller (docs/security.md, "Roles").
type rule struct {
	// action is what the RPC does; 0 with public: nothing to guard.
	action auth.Action
	// scope reads the namespace (and the object, for audit lines) a
	// request acts on; nil for the cluster-wide actions (Operate).
	scope func(req any) (namespace, object string)
	// perMessage: a stream whose every message is authorized on its own
	// (KeepAlive names an instance per message); otherwise a stream is
	// authorized on its first message.
	perMessage bool
	// public needs no credential (health checks, reflection): nothing of
	// the registry's data is in it.
	public bool
	// self needs a valid credential and nothing more (WhoAmI).
	self bool
	// atOpen: a stream authorized when it opens, its scope reading no
	// message (xDS: a library's stream loop, not the handler, reads them,
	// and would take a denial on a message for the stream's end).
	atOpen bool
	// quiet: a success is not audited (a lease renewal changes no stored
	// state and comes every few seconds from every instance); a denial is.
	quiet bool
}

// in builds a scope from a request's getters, defaulting the namespace as
// the handlers do.
func in[T any](f func(T) (string, string)) func(any) (string, string) {
	return func(req any) (string, string) {
		ns, obj := f(req.(T))
		return meta.Namespace(ns), obj
	}
}

// everyNamespace is the scope of what reads every namespace at once: "*"
// is no namespace's name, so only a "*" binding matches it.
func everyNamespace(any) (string, string) { return "*", "" }

// rules is the one table of who may call what: every method of every
// service the registry serves, and nothing else (a method not here is
// denied).
var rules = map[string]rule{
	svcregv1grpc.RegistryService_CreateService_FullMethodName: {action: auth.WriteService, scope: in(func(r *svcregv1.CreateServiceRequest) (string, string) {
		return r.GetService().GetNamespace(), r.GetService().GetName()
	})},
	svcregv1grpc.RegistryService_GetService_FullMethodName: {action: auth.Read, scope: in(func(r *svcregv1.GetServiceRequest) (string, string) {
		return r.GetNamespace(), r.GetName()
	})},
	svcregv1grpc.RegistryService_ListServices_FullMethodName: {action: auth.Read, scope: in(func(r *svcregv1.ListServicesRequest) (string, string) {
		return r.GetNamespace(), ""
	})},
	svcregv1grpc.RegistryService_UpdateService_FullMethodName: {action: auth.WriteService, scope: in(func(r *svcregv1.UpdateServiceRequest) (string, string) {
		return r.GetService().GetNamespace(), r.GetService().GetName()
	})},
	svcregv1grpc.RegistryService_DeleteService_FullMethodName: {action: auth.WriteService, scope: in(func(r *svcregv1.DeleteServiceRequest) (string, string) {
		return r.GetNamespace(), r.GetName()
	})},
	svcregv1grpc.RegistryService_CreateInstance_FullMethodName: {action: auth.WriteInstance, scope: in(func(r *svcregv1.CreateInstanceRequest) (string, string) {
		return r.GetInstance().GetNamespace(), r.GetInstance().GetName()
	})},
	svcregv1grpc.RegistryService_GetInstance_FullMethodName: {action: auth.Read, scope: in(func(r *svcregv1.GetInstanceRequest) (string, string) {
		return r.GetNamespace(), r.GetName()
	})},
	svcregv1grpc.RegistryService_ListInstances_FullMethodName: {action: auth.Read, scope: in(func(r *svcregv1.ListInstancesRequest) (string, string) {
		return r.GetNamespace(), ""
	})},
	svcregv1grpc.RegistryService_UpdateInstance_FullMethodName: {action: auth.WriteInstance, scope: in(func(r *svcregv1.UpdateInstanceRequest) (string, string) {
		return r.GetInstance().GetNamespace(), r.GetInstance().GetName()
	})},
	svcregv1grpc.RegistryService_DeleteInstance_FullMethodName: {action: auth.WriteInstance, scope: in(func(r *svcregv1.DeleteInstanceRequest) (string, string) {
		return r.GetNamespace(), r.GetName()
	})},
	svcregv1grpc.RegistryService_ListEndpoints_FullMethodName: {action: auth.Read, scope: in(func(r *svcregv1.ListEndpointsRequest) (string, string) {
		return r.GetNamespace(), r.GetService()
	})},
	svcregv1grpc.RegistryService_ReplaceEndpoints_FullMethodName: {action: auth.WriteService, scope: in(func(r *svcregv1.ReplaceEndpointsRequest) (string, string) {
		return r.GetNamespace(), r.GetService()
	})},
	svcregv1grpc.RegistryService_WatchEndpoints_FullMethodName: {action: auth.Read, scope: in(func(r *svcregv1.WatchEndpointsRequest) (string, string) {
		return r.GetNamespace(), r.GetService()
	})},
	svcregv1grpc.RegistryService_Watch_FullMethodName: {action: auth.Read, scope: in(func(r *svcregv1.WatchRequest) (string, string) {
		return r.GetNamespace(), ""
	})},
	svcregv1grpc.RegistryService_RenewInstanceLease_FullMethodName: {action: auth.WriteInstance, quiet: true, scope: in(func(r *svcregv1.RenewInstanceLeaseRequest) (string, string) {
		return r.GetNamespace(), r.GetName()
	})},
	// A probe's verdict changes what every client sees of an instance:
	// the services' writers (admin) and the node agents' tokens report it.
	svcregv1grpc.RegistryService_ReportProbeResult_FullMethodName: {action: auth.WriteService, scope: in(func(r *svcregv1.ReportProbeResultRequest) (string, string) {
		return r.GetNamespace(), r.GetName()
	})},
	svcregv1grpc.RegistryService_KeepAlive_FullMethodName: {action: auth.WriteInstance, perMessage: true, scope: in(func(r *svcregv1.KeepAliveRequest) (string, string) {
		return r.GetNamespace(), r.GetName()
	})},
	// Resolve reads across namespaces; its answer shows only the readable
	// ones.
	svcregv1grpc.RegistryService_Resolve_FullMethodName: {action: auth.Read, scope: func(req any) (string, string) {
		return meta.AllNamespaces, req.(*svcregv1.ResolveRequest).GetName()
	}},
	svcregv1grpc.RegistryService_GetEnvironment_FullMethodName: {action: auth.Read, scope: in(func(r *svcregv1.GetEnvironmentRequest) (string, string) {
		return r.GetNamespace(), ""
	})},

	svcregv1grpc.OperatorService_ListPeers_FullMethodName:       {action: auth.Operate},
	svcregv1grpc.OperatorService_RemovePeer_FullMethodName:      {action: auth.Operate},
	svcregv1grpc.OperatorService_TransferLeader_FullMethodName:  {action: auth.Operate},
	svcregv1grpc.OperatorService_SaveSnapshot_FullMethodName:    {action: auth.Operate},
	svcregv1grpc.OperatorService_RestoreSnapshot_FullMethodName: {action: auth.Operate},

	svcregv1grpc.TokenService_CreateToken_FullMethodName: {action: auth.Operate},
	svcregv1grpc.TokenService_ListTokens_FullMethodName:  {action: auth.Operate},
	svcregv1grpc.TokenService_RevokeToken_FullMethodName: {action: auth.Operate},
	svcregv1grpc.TokenService_WhoAmI_FullMethodName:      {self: true},

	// xDS resources are not filtered by namespace: a client needs a reader
	// of every one.
	discoveryv3.AggregatedDiscoveryService_StreamAggregatedResources_FullMethodName: {action: auth.Read, scope: everyNamespace, atOpen: true},
	discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResources_FullMethodName:  {action: auth.Read, scope: everyNamespace, atOpen: true},
	svcregv1grpc.XDSService_ListXDSClients_FullMethodName:                           {action: auth.Read, scope: everyNamespace},

	"/grpc.health.v1.Health/Check":                                   {public: true},
	"/grpc.health.v1.Health/Watch":                                   {public: true},
	"/grpc.health.v1.Health/List":                                    {public: true},
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {public: true},
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {public: true},
}
