package store

import (
	"fmt"
	"strconv"
	"strings"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/validation"
)

// Schedulers are the IPVS scheduler names a service may ask for (ipvsadm(8)).
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// Limits from Kubernetes' object metadata validation.
const (
	totalAnnotationSizeLimit = 256 << 10
	maxAffinityTimeout       = 86400
	maxTTLSeconds            = 3600
	maxWeight                = 65535
)

// DefaultNamespace is the namespace of objects that do not name one.
const DefaultNamespace = "default"

// DefaultAffinityTimeoutSeconds is Kubernetes' ClientIP affinity default (3h).
const DefaultAffinityTimeoutSeconds = 10800

// ValidateService checks a defaulted service, as Kubernetes'
// ValidateService; errors are reported under field.
func ValidateService(svc *svcregv1.Service, field validation.Path) validation.ErrorList {
	var errs validation.ErrorList
	errs = append(errs, validateName(svc.GetName(), field.Child("name"), validation.IsDNS1035Label)...)
	errs = append(errs, validateNamespace(svc.GetNamespace(), field.Child("namespace"))...)
	errs = append(errs, validateLabels(svc.GetLabels(), field.Child("labels"))...)
	errs = append(errs, validateAnnotations(svc.GetAnnotations(), field.Child("annotations"))...)
	errs = append(errs, validateLabels(svc.GetSelector(), field.Child("selector"))...)

	typ := svc.GetType()
	if _, ok := svcregv1.ServiceType_name[int32(typ)]; !ok || typ == svcregv1.ServiceType_SERVICE_TYPE_UNSPECIFIED {
		errs = append(errs, validation.NotSupported(field.Child("type"), typ.String(), enumNames(svcregv1.ServiceType_name)))
	}
	externalName := typ == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME
	nodePorts := typ == svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT || typ == svcregv1.ServiceType_SERVICE_TYPE_LOAD_BALANCER
	headless := svc.GetClusterIp() == ClusterIPNone

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

	errs = append(errs, validateServicePorts(svc, field.Child("ports"), !externalName && !headless, nodePorts)...)

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

	sched := svc.GetScheduler()
	if !isScheduler(sched) {
		errs = append(errs, validation.NotSupported(field.Child("scheduler"), sched, Schedulers))
	}
	if o := svc.GetSchedulerOptions(); o != nil {
		of := field.Child("scheduler_options")
		errs = append(errs, validateMetadataKey(o.GetHashKey(), of.Child("hash_key"))...)
		errs = append(errs, validateMetadataKey(o.GetSecondaryKey(), of.Child("secondary_key"))...)
		if o.GetSecondaryKey() != "" && o.GetHashKey() == "" {
			errs = append(errs, validation.Forbidden(of.Child("secondary_key"), "needs hash_key"))
		}
		if o.GetFallback() && sched != "sh" && sched != "mh" {
			errs = append(errs, validation.Forbidden(of.Child("fallback"), "only the sh and mh schedulers have a fallback"))
		}
		if t := o.GetPersistenceTimeoutSeconds(); t < 0 || t > maxAffinityTimeout {
			errs = append(errs, validation.Invalid(of.Child("persistence_timeout_seconds"), t,
				fmt.Sprintf("must be between 0 and %d, inclusive", maxAffinityTimeout)))
		}
	}
	return errs
}

func validateServicePorts(svc *svcregv1.Service, field validation.Path, required, nodePorts bool) validation.ErrorList {
	var errs validation.ErrorList
	ports := svc.GetPorts()
	if required && len(ports) == 0 {
		errs = append(errs, validation.Required(field, "at least one port, unless the service is headless or EXTERNAL_NAME"))
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
func ValidateInstance(inst *svcregv1.Instance, field validation.Path) validation.ErrorList {
	var errs validation.ErrorList
	errs = append(errs, validateName(inst.GetName(), field.Child("name"), validation.IsDNS1123Subdomain)...)
	errs = append(errs, validateNamespace(inst.GetNamespace(), field.Child("namespace"))...)
	errs = append(errs, validateLabels(inst.GetLabels(), field.Child("labels"))...)
	if inst.GetIp() == "" {
		errs = append(errs, validation.Required(field.Child("ip"), ""))
	} else {
		errs = append(errs, validation.Invalids(field.Child("ip"), inst.GetIp(), validation.IsValidEndpointIP(inst.GetIp()))...)
	}
	names := map[string]bool{}
	pairs := map[string]bool{}
	for i, p := range inst.GetPorts() {
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
	if ns == AllNamespaces {
		return validation.ErrorList{validation.Invalid(field, ns, `"-" means every namespace and only lists may use it`)}
	}
	return validation.Invalids(field, ns, validation.IsDNS1123Label(ns))
}

func validateLabels(labels map[string]string, field validation.Path) validation.ErrorList {
	var errs validation.ErrorList
	for _, k := range sortedKeys(labels) {
		errs = append(errs, validation.Invalids(field, k, validation.IsQualifiedName(k))...)
		errs = append(errs, validation.Invalids(field.Key(k), labels[k], validation.IsValidLabelValue(labels[k]))...)
	}
	return errs
}

func validateAnnotations(annotations map[string]string, field validation.Path) validation.ErrorList {
	var errs validation.ErrorList
	total := 0
	for _, k := range sortedKeys(annotations) {
		errs = append(errs, validation.Invalids(field, k, validation.IsQualifiedName(strings.ToLower(k)))...)
		total += len(k) + len(annotations[k])
	}
	if total > totalAnnotationSizeLimit {
		errs = append(errs, validation.TooLong(field, totalAnnotationSizeLimit))
	}
	return errs
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

func isScheduler(name string) bool {
	for _, s := range Schedulers {
		if s == name {
			return true
		}
	}
	return false
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
