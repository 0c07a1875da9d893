// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/meta"
)

// defaultService fills the defaults Kubernetes' defaulting would, so that
// stored services show their effective values.
func defaultService(s *svcregv1.Service) {
	s.Namespace = meta.Namespace(s.Namespace)
	if s.Type == svcregv1.ServiceType_SERVICE_TYPE_UNSPECIFIED {
		s.Type = svcregv1.ServiceType_SERVICE_TYPE_CLUSTER_IP
	}
	if s.SessionAffinity == svcregv1.SessionAffinity_SESSION_AFFINITY_UNSPECIFIED {
		s.SessionAffinity = svcregv1.SessionAffinity_SESSION_AFFINITY_NONE
	}
	if s.SessionAffinity == svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP && s.SessionAffinityTimeoutSeconds == nil {
		s.SessionAffinityTimeoutSeconds = proto.Int32(DefaultAffinityTimeoutSeconds)
	}
	for _, p := range s.Ports {
		if p.Protocol == svcregv1.Protocol_PROTOCOL_UNSPECIFIED {
			p.Protocol = svcregv1.Protocol_PROTOCOL_TCP
		}
		if p.TargetPort == "" {
			p.TargetPort = strconv.Itoa(int(p.Port))
		}
	}
	if s.Scheduler == "" {
		s.Scheduler = ipvs.DefaultScheduler
	}
	if o := s.SchedulerOptions; o != nil {
		o.HashKey = strings.ToLower(o.HashKey)
		o.SecondaryKey = strings.ToLower(o.SecondaryKey)
		if proto.Equal(o, &svcregv1.SchedulerOptions{}) {
			s.SchedulerOptions = nil
		}
	}
}

// defaultInstance makes the optional fields explicit: ready and weight 1.
func defaultInstance(i *svcregv1.Instance) {
	i.Namespace = meta.Namespace(i.Namespace)
	if i.Ready == nil {
		i.Ready = proto.Bool(true)
	}
	if i.Weight == nil {
		i.Weight = proto.Uint32(1)
	}
	for _, p := range i.Ports {
		if p.Protocol == svcregv1.Protocol_PROTOCOL_UNSPECIFIED {
			p.Protocol = svcregv1.Protocol_PROTOCOL_TCP
		}
	}
	defaultProbe(i.ReadinessProbe)
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
