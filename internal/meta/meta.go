// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package meta is the object vocabulary every svcreg package shares, so that
// each rule lives in one place: the default and the all-namespaces
// namespace, object keys, the headless cluster IP and the registry's
// well-known address.
package meta

import "strings"

import "os"

// DefaultNamespace is the namespace of objects and requests that name none.
const DefaultNamespace = "default"

// AllNamespaces, as a list's or a watch's namespace, means every namespace
// (AIP-159's "-").
const AllNamespaces = "-"

// NodeLeaseNamespace holds the node agents' leases, as Kubernetes'
// kube-node-lease holds the kubelets': an instance named after the node,
// kept alive by its agent. A node with a live lease has an agent that
// probes its instances; the servers probe the others (docs/health.md).
const NodeLeaseNamespace = "svcreg-node-lease"

// ClusterIPNone is the cluster_ip of a headless service.
const ClusterIPNone = "None"

// Namespace defaults an empty namespace.
func Namespace(ns string) string {
	if ns == "" {
		return DefaultNamespace
	}
	return ns
}

// Key is the key of a namespaced object: "namespace/name". Namespaces and
// names cannot contain '/', so the key is unambiguous.
func Key(namespace, name string) string { return namespace + "/" + name }

// SplitKey is Key's inverse (a namespace has no "/").
func SplitKey(key string) (namespace, name string) {
	namespace, name, _ = strings.Cut(key, "/")
	return namespace, name
}

// EndpointKey is the key of one endpoint: "namespace/service/instance".
func EndpointKey(namespace, service, instance string) string {
	return namespace + "/" + service + "/" + instance
}

// DefaultRegistryAddr is the registry's gRPC address when none is given:
// where `svcreg serve` listens by default and where clients look first.
const DefaultRegistryAddr = "127.0.0.1:7400"

// RegistryAddr resolves a registry address: addr, else $SVCREG_ADDR, else
// DefaultRegistryAddr.
func RegistryAddr(addr string) string {
	if addr != "" {
		return addr
	}
	if env := os.Getenv("SVCREG_ADDR"); env != "" {
		return env
	}
	return DefaultRegistryAddr
}
