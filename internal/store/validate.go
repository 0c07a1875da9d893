// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"strconv"
	"strings"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/ipvs"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/validation"
)

// Fixed ranges of Kubernetes' and ipvsadm's own.
const (
	maxAffinityTimeout = 86400
	maxTTLSeconds      = 3600
	maxWeight          = 65535
)

// DefaultAffinityTimeoutSeconds is Kubernetes' ClientIP affinity default (3h).
const DefaultAffinityTimeoutSeconds = 10800

// ValidateService checks a defaulted service, as Kubernetes'
// ValidateService; errors are reported under field.
func ValidateService(svc *svcregv1.Service, field validation.Path, lim Limits) validation.ErrorList {
	var errs validation.ErrorList
	errs = append(errs, validateName(svc.GetName(), field.Child("name"), validation.IsDNS1035Label)...)
	errs = append(errs, validateNamespace(svc.GetNamespace(), field.Child("namespace"))...)
	errs = append(errs, validateLabels(svc.GetLabels(), field.Child("labels"), lim)...)
	errs = append(errs, validateAnnotations(svc.GetAnnotations(), field.Child("annotations"), lim)...)
	errs = append(errs, validateLabels(svc.GetSelector(), field.Child("selector"), lim)...)

	typ := svc.GetType()
	if _, ok := svcregv1.ServiceType_name[int32(typ)]; !ok || typ == svcregv1.ServiceType_SERVICE_TYPE_UNSPECIFIED {
		errs = append(errs, validation.NotSupported(field.Child("type"), typ.String(), enumNames(svcregv1.ServiceType_name)))
	}
	externalName := typ == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME
	nodePorts := typ == svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT || typ == svcregv1.ServiceType_SERVICE_TYPE_LOAD_BALANCER
	headless := svc.GetClusterIp() == meta.ClusterIPNone

	switch ip := svc.GetClusterIp(); {
	case externalName && ip != "":
		errs = append(errs, validation.Invalid(field.Child("cluster_ip"), ip, "must be empty for EXTERNAL_NAME services"))
	case headless && nodePorts:
		errs = append(errs, validation.Invalid(field.Child("cluster_ip"), ip, "may not be \"None\" for "+typ.String()+" services"))
	case ip != "" && !headless:
		if _, msgs := validation.ParseIP(ip); msgs != nil {
			errs = append(errs, validation.Invalids(field.Child("cluster_ip"), ip, append(msgs[:len(msgs):len(msgs)], `or "None" for a headless service`))...)
		}
	}

	if externalName {
		if svc.GetExternalName() == "" {
			errs = append(errs, validation.Required(field.Child("external_name"), "for EXTERNAL_NAME services"))
		} else {
			errs = append(errs, validation.Invalids(field.Child("external_name"), svc.GetExternalName(),
				validation.IsDNS1123Subdomain(strings.TrimSuffix(svc.GetExternalName(), ".")))...)
		}
	} else if svc.GetExternalName() != "" {
		errs = append(errs, validation.Forbidden(field.Child("external_name"), "may only be set for EXTERNAL_NAME services"))
	}

	errs = append(errs, validateServicePorts(svc, field.Child("ports"), !externalName && !headless, nodePorts, lim)...)

	switch svc.GetSessionAffinity() {
	case svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP:
		if t := svc.GetSessionAffinityTimeoutSeconds(); t < 1 || t > maxAffinityTimeout {
			errs = append(errs, validation.Invalid(field.Child("session_affinity_timeout_seconds"), t,
				fmt.Sprintf("must be greater than 0 and less than or equal to %d", maxAffinityTimeout)))
		}
	case svcregv1.SessionAffinity_SESSION_AFFINITY_NONE:
		if svc.SessionAffinityTimeoutSeconds != nil {
			errs = append(errs, validation.Forbidden(field.Child("session_affinity_timeout_seconds"), "must not be set when session_affinity is SESSION_AFFINITY_NONE"))
		}
	default:
		errs = append(errs, validation.NotSupported(field.Child("session_affinity"), svc.GetSessionAffinity().String(), enumNames(svcregv1.SessionAffinity_name)))
	}

	errs = append(errs, validateTrafficPolicy(svc, field)...)
	errs = append(errs, validateOutlierDetection(svc.GetOutlierDetection(), field.Child("outlier_detection"))...)
	errs = append(errs, validateScheduler(svc, field)...)
	return errs
}

// validateTrafficPolicy checks the topology fields (KEP-4444, KEP-2086).
func validateTrafficPolicy(svc *svcregv1.Service, field validation.Path) validation.ErrorList {
	var errs validation.ErrorList
	if _, ok := svcregv1.TrafficDistribution_name[int32(svc.GetTrafficDistribution())]; !ok {
		errs = append(errs, validation.NotSupported(field.Child("traffic_distribution"), svc.GetTrafficDistribution().String(), enumNames(svcregv1.TrafficDistribution_name)))
	}
	local := svc.GetInternalTrafficPolicy() == svcregv1.InternalTrafficPolicy_INTERNAL_TRAFFIC_POLICY_LOCAL
	if _, ok := svcregv1.InternalTrafficPolicy_name[int32(svc.GetInternalTrafficPolicy())]; !ok {
		errs = append(errs, validation.NotSupported(field.Child("internal_traffic_policy"), svc.GetInternalTrafficPolicy().String(), enumNames(svcregv1.InternalTrafficPolicy_name)))
	}
	if svc.GetLocalFallback() && !local {
		errs = append(errs, validation.Forbidden(field.Child("local_fallback"), "applies only with internal_traffic_policy INTERNAL_TRAFFIC_POLICY_LOCAL"))
	}
	return errs
}

// validateScheduler checks the scheduler and its options (docs/ipvs.md).
func validateScheduler(svc *svcregv1.Service, field validation.Path) validation.ErrorList {
	var errs validation.ErrorList
	sched := svc.GetScheduler()
	if !ipvs.Valid(sched) {
		errs = append(errs, validation.NotSupported(field.Child("scheduler"), sched, ipvs.Schedulers))
	}
	o := svc.GetSchedulerOptions()
	if o == nil {
		return errs
	}
	of := field.Child("scheduler_options")
	errs = append(errs, validateMetadataKey(o.GetHashKey(), of.Child("hash_key"))...)
	errs = append(errs, validateMetadataKey(o.GetSecondaryKey(), of.Child("secondary_key"))...)
	if o.GetSecondaryKey() != "" && o.GetHashKey() == "" {
		errs = append(errs, validation.Forbidden(of.Child("secondary_key"), "needs hash_key"))
	}
	if o.GetFallback() && !ipvs.HasFallback(sched) {
		errs = append(errs, validation.Forbidden(of.Child("fallback"), "only the sh and mh schedulers have a fallback: leave it false"))
	}
	if t := o.GetPersistenceTimeoutSeconds(); t < 0 || t > maxAffinityTimeout {
		errs = append(errs, validation.Invalid(of.Child("persistence_timeout_seconds"), t,
			fmt.Sprintf("must be between 0 and %d, inclusive", maxAffinityTimeout)))
	}
	return errs
}

func validateServicePorts(svc *svcregv1.Service, field validation.Path, required, nodePorts bool, lim Limits) validation.ErrorList {
	var errs validation.ErrorList
	ports := svc.GetPorts()
	if required && len(ports) == 0 {
		errs = append(errs, validation.Required(field, "at least one port, unless the service is headless or EXTERNAL_NAME"))
	}
	if len(ports) > lim.Ports {
		return append(errs, validation.TooMany(field, len(ports), lim.Ports))
	}
	names := map[string]bool{}
	pairs := map[string]bool{}
	for i, p := range ports {
		pf := field.Index(i)
		switch {
		case p.GetName() == "" && len(ports) > 1:
			errs = append(errs, validation.Required(pf.Child("name"), "when the service has more than one port"))
		case p.GetName() != "":
			errs = append(errs, validation.Invalids(pf.Child("name"), p.GetName(), validation.IsDNS1123Label(p.GetName()))...)
			if names[p.GetName()] {
				errs = append(errs, validation.Duplicate(pf.Child("name"), p.GetName()))
			}
			names[p.GetName()] = true
		}
		errs = append(errs, validateProtocol(p.GetProtocol(), pf.Child("protocol"))...)
		errs = append(errs, validation.Invalids(pf.Child("port"), p.GetPort(), validation.IsValidPortNum(int64(p.GetPort())))...)
		if p.GetTargetPort() != strconv.Itoa(int(p.GetPort())) { // else defaulted from port, checked above
			errs = append(errs, validateTargetPort(p.GetTargetPort(), pf.Child("target_port"))...)
		}
		switch np := p.GetNodePort(); {
		case np != 0 && !nodePorts:
			errs = append(errs, validation.Forbidden(pf.Child("node_port"), "may only be set for NODE_PORT and LOAD_BALANCER services"))
		case np < 0:
			errs = append(errs, validation.Invalid(pf.Child("node_port"), np, "must be between 1 and 65535, inclusive"))
		}
		if p.GetAppProtocol() != "" {
			errs = append(errs, validation.Invalids(pf.Child("app_protocol"), p.GetAppProtocol(), validation.IsQualifiedName(p.GetAppProtocol()))...)
		}
		pair := fmt.Sprintf("%d/%s", p.GetPort(), protocolName(p.GetProtocol()))
		if pairs[pair] {
			errs = append(errs, validation.Duplicate(pf, pair))
		}
		pairs[pair] = true
	}
	return errs
}

// validateTargetPort accepts a port number or an IANA service name, like
// Kubernetes' IntOrString.
func validateTargetPort(tp string, field validation.Path) validation.ErrorList {
	if n, err := strconv.Atoi(tp); err == nil {
		return validation.Invalids(field, tp, validation.IsValidPortNum(int64(n)))
	}
	return validation.Invalids(field, tp, validation.IsValidPortName(tp))
}

// ValidateInstance checks a defaulted instance.
func ValidateInstance(inst *svcregv1.Instance, field validation.Path, lim Limits) validation.ErrorList {
	var errs validation.ErrorList
	errs = append(errs, validateName(inst.GetName(), field.Child("name"), validation.IsDNS1123Subdomain)...)
	errs = append(errs, validateNamespace(inst.GetNamespace(), field.Child("namespace"))...)
	errs = append(errs, validateLabels(inst.GetLabels(), field.Child("labels"), lim)...)
	if inst.GetIp() == "" {
		errs = append(errs, validation.Required(field.Child("ip"), ""))
	} else {
		errs = append(errs, validation.Invalids(field.Child("ip"), inst.GetIp(), validation.IsValidEndpointIP(inst.GetIp()))...)
	}
	if len(inst.GetPorts()) > lim.Ports {
		errs = append(errs, validation.TooMany(field.Child("ports"), len(inst.GetPorts()), lim.Ports))
	}
	names := map[string]bool{}
	pairs := map[string]bool{}
	for i, p := range inst.GetPorts()[:min(len(inst.GetPorts()), lim.Ports)] {
		pf := field.Child("ports").Index(i)
		if p.GetName() != "" {
			errs = append(errs, validation.Invalids(pf.Child("name"), p.GetName(), validation.IsValidPortName(p.GetName()))...)
			if names[p.GetName()] {
				errs = append(errs, validation.Duplicate(pf.Child("name"), p.GetName()))
			}
			names[p.GetName()] = true
		}
		errs = append(errs, validation.Invalids(pf.Child("port"), p.GetPort(), validation.IsValidPortNum(int64(p.GetPort())))...)
		errs = append(errs, validateProtocol(p.GetProtocol(), pf.Child("protocol"))...)
		pair := fmt.Sprintf("%d/%s", p.GetPort(), protocolName(p.GetProtocol()))
		if pairs[pair] {
			errs = append(errs, validation.Duplicate(pf, pair))
		}
		pairs[pair] = true
	}
	errs = append(errs, validateBackendTuning(inst.GetWeight(), inst.UpperThreshold, inst.LowerThreshold, field)...)
	for _, f := range []struct {
		name, value string
	}{{"zone", inst.GetZone()}, {"node", inst.GetNode()}} {
		if f.value != "" {
			errs = append(errs, validation.Invalids(field.Child(f.name), f.value, validation.IsValidLabelValue(f.value))...)
		}
	}
	for _, f := range []struct {
		name, value string
	}{{"hostname", inst.GetHostname()}, {"subdomain", inst.GetSubdomain()}} {
		if f.value != "" {
			errs = append(errs, validation.Invalids(field.Child(f.name), f.value, validation.IsDNS1123Label(f.value))...)
		}
	}
	if t := inst.GetTtlSeconds(); t < 0 || t > maxTTLSeconds {
		errs = append(errs, validation.Invalid(field.Child("ttl_seconds"), t, fmt.Sprintf("must be between 1 and %d, or 0 for no lease", maxTTLSeconds)))
	}
	errs = append(errs, validateProbe(inst.GetReadinessProbe(), inst.GetPorts(), field.Child("readiness_probe"))...)
	return errs
}

// validateBackendTuning checks the IPVS knobs of an instance or endpoint:
// weight 0..65535, and thresholds with lower <= upper (ipvsadm(8) -x/-y).
func validateBackendTuning(weight uint32, upper, lower *uint32, field validation.Path) validation.ErrorList {
	var errs validation.ErrorList
	if weight > maxWeight {
		errs = append(errs, validation.Invalid(field.Child("weight"), weight, fmt.Sprintf("must be between 0 and %d, inclusive", maxWeight)))
	}
	if upper != nil && *upper == 0 {
		errs = append(errs, validation.Invalid(field.Child("upper_threshold"), *upper, "must be greater than 0 when set"))
	}
	switch {
	case lower != nil && upper == nil:
		errs = append(errs, validation.Forbidden(field.Child("lower_threshold"), "needs upper_threshold"))
	case lower != nil && *lower > *upper:
		errs = append(errs, validation.Invalid(field.Child("lower_threshold"), *lower, fmt.Sprintf("must not exceed upper_threshold (%d)", *upper)))
	}
	return errs
}

func validateName(name string, field validation.Path, check func(string) []string) validation.ErrorList {
	if name == "" {
		return validation.ErrorList{validation.Required(field, "")}
	}
	return validation.Invalids(field, name, check(name))
}

func validateNamespace(ns string, field validation.Path) validation.ErrorList {
	if ns == meta.AllNamespaces {
		return validation.ErrorList{validation.Invalid(field, ns, `"-" means every namespace and only lists may use it`)}
	}
	return validation.Invalids(field, ns, validation.IsDNS1123Label(ns))
}

// validateLabels checks label (or selector) pairs, their count and their
// total size first: an object with 60,000 labels gets one error, not
// 60,000.
func validateLabels(labels map[string]string, field validation.Path, lim Limits) validation.ErrorList {
	if len(labels) > lim.Labels {
		return validation.ErrorList{validation.TooMany(field, len(labels), lim.Labels)}
	}
	if total := mapBytes(labels); total > lim.LabelBytes {
		return validation.ErrorList{validation.TooLong(field, lim.LabelBytes)}
	}
	var errs validation.ErrorList
	for _, k := range sortedKeys(labels) {
		errs = append(errs, validation.Invalids(field, k, validation.IsQualifiedName(k))...)
		errs = append(errs, validation.Invalids(field.Key(k), labels[k], validation.IsValidLabelValue(labels[k]))...)
	}
	return errs
}

// validateAnnotations checks annotation keys, their count and their total
// size (Kubernetes' TotalAnnotationSizeLimitB: 256 KiB).
func validateAnnotations(annotations map[string]string, field validation.Path, lim Limits) validation.ErrorList {
	if len(annotations) > lim.Annotations {
		return validation.ErrorList{validation.TooMany(field, len(annotations), lim.Annotations)}
	}
	if total := mapBytes(annotations); total > lim.AnnotationBytes {
		return validation.ErrorList{validation.TooLong(field, lim.AnnotationBytes)}
	}
	var errs validation.ErrorList
	for _, k := range sortedKeys(annotations) {
		errs = append(errs, validation.Invalids(field, k, validation.IsQualifiedName(strings.ToLower(k)))...)
	}
	return errs
}

func mapBytes(m map[string]string) int {
	total := 0
	for k, v := range m {
		total += len(k) + len(v)
	}
	return total
}

func validateProtocol(p svcregv1.Protocol, field validation.Path) validation.ErrorList {
	if _, ok := svcregv1.Protocol_name[int32(p)]; !ok || p == svcregv1.Protocol_PROTOCOL_UNSPECIFIED {
		return validation.ErrorList{validation.NotSupported(field, p.String(), enumNames(svcregv1.Protocol_name))}
	}
	return nil
}

// validateMetadataKey checks a gRPC metadata key (lower case; the
// transport lower-cases them, so an upper-case key would never match).
func validateMetadataKey(key string, field validation.Path) validation.ErrorList {
	if key == "" {
		return nil
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return validation.ErrorList{validation.Invalid(field, key, "must be a gRPC metadata key: lower-case letters, digits, '-', '_' and '.'")}
		}
	}
	if strings.HasPrefix(key, "grpc-") {
		return validation.ErrorList{validation.Invalid(field, key, `must not start with "grpc-" (reserved by gRPC)`)}
	}
	return nil
}

// enumNames lists the settable names of a proto enum, without UNSPECIFIED.
func enumNames(m map[int32]string) []string {
	names := make([]string, 0, len(m))
	for i := int32(1); int(i) < len(m)+1; i++ {
		if n, ok := m[i]; ok {
			names = append(names, n)
		}
	}
	return names
}

func protocolName(p svcregv1.Protocol) string { return strings.TrimPrefix(p.String(), "PROTOCOL_") }

// validateOutlierDetection checks gRFC A50's bounds (zero is a default).
func validateOutlierDetection(od *svcregv1.OutlierDetection, field validation.Path) validation.ErrorList {
	if od == nil {
		return nil
	}
	var errs validation.ErrorList
	for _, f := range []struct {
		name string
		v    int32
	}{{"interval_seconds", od.GetIntervalSeconds()}, {"base_ejection_time_seconds", od.GetBaseEjectionTimeSeconds()},
		{"max_ejection_time_seconds", od.GetMaxEjectionTimeSeconds()}} {
		if f.v < 0 || f.v > 3600 {
			errs = append(errs, validation.Invalid(field.Child(f.name), f.v, "must be between 1 and 3600, or 0 for the default"))
		}
	}
	base, maxT := od.GetBaseEjectionTimeSeconds(), od.GetMaxEjectionTimeSeconds()
	if base == 0 {
		base = 30
	}
	if maxT != 0 && maxT < base {
		errs = append(errs, validation.Invalid(field.Child("max_ejection_time_seconds"), maxT, fmt.Sprintf("must be at least the base ejection time (%ds)", base)))
	}
	percent := func(f validation.Path, v uint32) {
		if v > 100 {
			errs = append(errs, validation.Invalid(f, v, "must be a percentage, 0..100"))
		}
	}
	percent(field.Child("max_ejection_percent"), od.GetMaxEjectionPercent())
	if sr := od.GetSuccessRateEjection(); sr != nil {
		percent(field.Child("success_rate_ejection").Child("enforcement_percentage"), sr.GetEnforcementPercentage())
	}
	if fp := od.GetFailurePercentageEjection(); fp != nil {
		percent(field.Child("failure_percentage_ejection").Child("threshold"), fp.GetThreshold())
		percent(field.Child("failure_percentage_ejection").Child("enforcement_percentage"), fp.GetEnforcementPercentage())
	}
	return errs
}
