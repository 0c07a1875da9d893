// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package validation

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// The limits and shapes of k8s.io/apimachinery/pkg/util/validation.
const (
	DNS1123LabelMaxLength     = 63
	DNS1123SubdomainMaxLength = 253
	LabelValueMaxLength       = 63
	qualifiedNameMaxLength    = 63
)

const (
	dns1123LabelFmt     = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
	dns1035LabelFmt     = "[a-z]([-a-z0-9]*[a-z0-9])?"
	dns1123SubdomainFmt = dns1123LabelFmt + "(\\." + dns1123LabelFmt + ")*"
	qualifiedNameFmt    = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
)

var (
	dns1123LabelRE      = regexp.MustCompile("^" + dns1123LabelFmt + "$")
	dns1035LabelRE      = regexp.MustCompile("^" + dns1035LabelFmt + "$")
	dns1123SubdomainRE  = regexp.MustCompile("^" + dns1123SubdomainFmt + "$")
	qualifiedNameRE     = regexp.MustCompile("^" + qualifiedNameFmt + "$")
	labelValueRE        = regexp.MustCompile("^(" + qualifiedNameFmt + ")?$")
	portNameCharsetRE   = regexp.MustCompile("^[-a-z0-9]+$")
	portNameOneLetterRE = regexp.MustCompile("[a-z]")
)

// IsDNS1123Label checks an RFC 1123 label: what namespaces, hostnames and
// service port names must be. It returns the reasons it is not one.
func IsDNS1123Label(s string) []string {
	var errs []string
	if len(s) > DNS1123LabelMaxLength {
		errs = append(errs, maxLenError(DNS1123LabelMaxLength))
	}
	if !dns1123LabelRE.MatchString(s) {
		errs = append(errs, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '"+dns1123LabelFmt+"')")
	}
	return errs
}

// IsDNS1035Label checks an RFC 1035 label: what service names must be (they
// become DNS names and environment variable prefixes, so no leading digit).
func IsDNS1035Label(s string) []string {
	var errs []string
	if len(s) > DNS1123LabelMaxLength {
		errs = append(errs, maxLenError(DNS1123LabelMaxLength))
	}
	if !dns1035LabelRE.MatchString(s) {
		errs = append(errs, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '"+dns1035LabelFmt+"')")
	}
	return errs
}

// IsDNS1123Subdomain checks an RFC 1123 subdomain: what instance names and
// external names must be.
func IsDNS1123Subdomain(s string) []string {
	var errs []string
	if len(s) > DNS1123SubdomainMaxLength {
		errs = append(errs, maxLenError(DNS1123SubdomainMaxLength))
	}
	if !dns1123SubdomainRE.MatchString(s) {
		errs = append(errs, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '"+dns1123SubdomainFmt+"')")
	}
	return errs
}

// IsQualifiedName checks a label or annotation key: an optional DNS subdomain
// prefix and '/', then a name of at most 63 characters.
func IsQualifiedName(s string) []string {
	var errs []string
	parts := strings.Split(s, "/")
	var name string
	switch len(parts) {
	case 1:
		name = parts[0]
	case 2:
		var prefix string
		prefix, name = parts[0], parts[1]
		if len(prefix) == 0 {
			errs = append(errs, "prefix part must be non-empty")
		} else if msgs := IsDNS1123Subdomain(prefix); len(msgs) != 0 {
			for _, m := range msgs {
				errs = append(errs, "prefix part "+m)
			}
		}
	default:
		return append(errs, "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '"+qualifiedNameFmt+"') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
	}
	if len(name) == 0 {
		errs = append(errs, "name part must be non-empty")
	} else if len(name) > qualifiedNameMaxLength {
		errs = append(errs, "name part "+maxLenError(qualifiedNameMaxLength))
	}
	if len(name) != 0 && !qualifiedNameRE.MatchString(name) {
		errs = append(errs, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '"+qualifiedNameFmt+"')")
	}
	return errs
}

// IsValidLabelValue checks a label value: empty, or at most 63 characters
// of the qualified name alphabet.
func IsValidLabelValue(s string) []string {
	var errs []string
	if len(s) > LabelValueMaxLength {
		errs = append(errs, maxLenError(LabelValueMaxLength))
	}
	if !labelValueRE.MatchString(s) {
		errs = append(errs, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '("+qualifiedNameFmt+")?')")
	}
	return errs
}

// IsValidPortNum checks a port number.
func IsValidPortNum(port int64) []string {
	if port < 1 || port > 65535 {
		return []string{"must be between 1 and 65535, inclusive"}
	}
	return nil
}

// IsValidPortName checks an IANA_SVC_NAME (RFC 6335): what a named target
// port or an instance port name must be.
func IsValidPortName(s string) []string {
	var errs []string
	if len(s) > 15 {
		errs = append(errs, "must be no more than 15 characters")
	}
	if !portNameCharsetRE.MatchString(s) {
		errs = append(errs, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
	}
	if !portNameOneLetterRE.MatchString(s) {
		errs = append(errs, "must contain at least one letter (a-z)")
	}
	if strings.Contains(s, "--") {
		errs = append(errs, "must not contain consecutive hyphens")
	}
	if len(s) > 0 && (s[0] == '-' || s[len(s)-1] == '-') {
		errs = append(errs, "must not begin or end with a hyphen")
	}
	return errs
}

// ParseIP parses an IPv4 or IPv6 address in canonical form (no zone, no
// leading zeros: "10.96.0.300" and "010.1.2.3" are not IPs).
func ParseIP(s string) (netip.Addr, []string) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, []string{"must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"}
	}
	return a.Unmap(), nil
}

// IsValidEndpointIP checks an address that traffic can be sent to: not
// unspecified, multicast or link-local (Kubernetes' ValidateEndpointIP).
// Loopback is allowed, so that a registry and its backends can share a host.
func IsValidEndpointIP(s string) []string {
	a, errs := ParseIP(s)
	if errs != nil {
		return errs
	}
	switch {
	case a.IsUnspecified():
		return []string{"may not be unspecified (0.0.0.0 or ::)"}
	case a.IsMulticast():
		return []string{"may not be in the multicast range (224.0.0.0/4, ff00::/8)"}
	case a.IsLinkLocalUnicast():
		return []string{"may not be in the link-local range (169.254.0.0/16, fe80::/10)"}
	}
	return nil
}

func maxLenError(n int) string { return fmt.Sprintf("must be no more than %d characters", n) }
