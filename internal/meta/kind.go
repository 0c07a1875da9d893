// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package meta

import (
	"fmt"
	"strings"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// Kind is a kind of registry object: the one type every layer names
// objects with. Its spellings are methods: the store's events, the API's
// ObjectKind, a document's kind, a command's resource name.
type Kind uint8

// The kinds.
const (
	KindService Kind = iota + 1
	KindInstance
	// KindEndpoint is one endpoint; a selectorless service's endpoints
	// together are a document of kind Endpoints.
	KindEndpoint
)

// Kinds are every kind.
var Kinds = []Kind{KindService, KindInstance, KindEndpoint}

// String is the kind as a field path and a "kind/name" line spell it:
// service, instance, endpoints.
func (k Kind) String() string {
	switch k {
	case KindService:
		return "service"
	case KindInstance:
		return "instance"
	case KindEndpoint:
		return "endpoints"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Resource is the kind as commands name it (kubectl's plural): services,
// instances, endpoints.
func (k Kind) Resource() string {
	switch k {
	case KindService:
		return "services"
	case KindInstance:
		return "instances"
	}
	return "endpoints"
}

// Document is the kind of a document of svcreg's own (apiVersion
// svcreg.io/v1): Service, Instance, Endpoints.
func (k Kind) Document() string {
	switch k {
	case KindService:
		return "Service"
	case KindInstance:
		return "Instance"
	}
	return "Endpoints"
}

// Proto is the kind in the API (Watch's kinds).
func (k Kind) Proto() svcregv1.ObjectKind {
	switch k {
	case KindService:
		return svcregv1.ObjectKind_OBJECT_KIND_SERVICE
	case KindInstance:
		return svcregv1.ObjectKind_OBJECT_KIND_INSTANCE
	case KindEndpoint:
		return svcregv1.ObjectKind_OBJECT_KIND_ENDPOINT
	}
	return svcregv1.ObjectKind_OBJECT_KIND_UNSPECIFIED
}

// KindOfProto is the kind an API ObjectKind names (false for none).
func KindOfProto(o svcregv1.ObjectKind) (Kind, bool) {
	for _, k := range Kinds {
		if k.Proto() == o {
			return k, true
		}
	}
	return 0, false
}

// KindOfDocument is the kind a document of svcreg's own declares.
func KindOfDocument(s string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Document() == s {
			return k, true
		}
	}
	return 0, false
}

// ParseResource reads a kind as a person types it in a command: singular,
// plural or kubectl's short name, in any case.
func ParseResource(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "service", "services", "svc":
		return KindService, nil
	case "instance", "instances", "inst":
		return KindInstance, nil
	case "endpoints", "endpoint", "ep":
		return KindEndpoint, nil
	}
	return 0, fmt.Errorf("the server doesn't have a resource type %q (services, instances, endpoints)", s)
}
