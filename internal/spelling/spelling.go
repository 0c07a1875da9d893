// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package spelling is the one table of how svcreg's enum values are
// spelled in Kubernetes' API (ClusterIP for SERVICE_TYPE_CLUSTER_IP): the
// kubernetes_name option on each value in proto/svcreg/v1, read through
// protoreflect. The REST API takes these spellings as aliases, manifests
// map them, the console and the web view print them.
package spelling

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// Kubernetes is a value's Kubernetes spelling, or "" when it has none.
func Kubernetes(v protoreflect.EnumValueDescriptor) string {
	if v == nil {
		return ""
	}
	name, _ := proto.GetExtension(v.Options(), svcregv1.E_KubernetesName).(string)
	return name
}

// Of is the Kubernetes spelling of an enum value (ClusterIP), or its own
// name when it has none.
func Of(e protoreflect.Enum) string {
	v := e.Descriptor().Values().ByNumber(e.Number())
	if v == nil {
		return ""
	}
	if k := Kubernetes(v); k != "" {
		return k
	}
	return string(v.Name())
}

// Parse finds the value of an enum that s spells: its Kubernetes spelling
// or its own name. It reports false, and the accepted spellings, when
// none does.
func Parse(enum protoreflect.EnumDescriptor, s string) (protoreflect.EnumNumber, bool) {
	values := enum.Values()
	for i := range values.Len() {
		v := values.Get(i)
		if k := Kubernetes(v); k != "" && k == s || string(v.Name()) == s {
			return v.Number(), true
		}
	}
	return 0, false
}

// Accepted lists the spellings Parse takes for an enum, Kubernetes' first,
// the unspecified value left out.
func Accepted(enum protoreflect.EnumDescriptor) (kubernetes, own []string) {
	values := enum.Values()
	for i := range values.Len() {
		v := values.Get(i)
		if strings.HasSuffix(string(v.Name()), "_UNSPECIFIED") {
			continue
		}
		if k := Kubernetes(v); k != "" {
			kubernetes = append(kubernetes, k)
		}
		own = append(own, string(v.Name()))
	}
	slices.Sort(kubernetes)
	return kubernetes, own
}

// Table is every enum's spellings, own name to Kubernetes', by enum: what
// the web view prints.
func Table() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, e := range []protoreflect.EnumDescriptor{
		svcregv1.ServiceType(0).Descriptor(), svcregv1.SessionAffinity(0).Descriptor(),
		svcregv1.Protocol(0).Descriptor(), svcregv1.EventType(0).Descriptor(),
		svcregv1.TrafficDistribution(0).Descriptor(), svcregv1.InternalTrafficPolicy(0).Descriptor(),
	} {
		m := map[string]string{}
		for i := range e.Values().Len() {
			if v := e.Values().Get(i); Kubernetes(v) != "" {
				m[string(v.Name())] = Kubernetes(v)
			}
		}
		out[string(e.Name())] = m
	}
	return out
}

// Protocol is a protocol's lower-case name (tcp, udp, sctp): DNS SRV
// labels and the node agent's frontends; an unspecified one is TCP.
func Protocol(p svcregv1.Protocol) string {
	if p == svcregv1.Protocol_PROTOCOL_UNSPECIFIED {
		p = svcregv1.Protocol_PROTOCOL_TCP
	}
	return strings.ToLower(Of(p))
}

// IntOrString reports whether a string field is Kubernetes' IntOrString
// (the int_or_string option): a JSON number is taken as its decimal text.
func IntOrString(f protoreflect.FieldDescriptor) bool {
	if f.Kind() != protoreflect.StringKind {
		return false
	}
	on, _ := proto.GetExtension(f.Options(), svcregv1.E_IntOrString).(bool)
	return on
}
