// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package kubedns answers DNS questions about the registry's services the
// way kube-dns and CoreDNS answer them about Kubernetes services, per the
// Kubernetes DNS-Based Service Discovery specification, schema 1.1.0:
//
//	<svc>.<ns>.svc.<zone>                A/AAAA: the cluster IP, or a headless
//	                                     service's ready endpoints; CNAME for
//	                                     EXTERNAL_NAME
//	<host>.<svc>.<ns>.svc.<zone>         A/AAAA of a headless endpoint (its
//	                                     hostname, or its IP with dashes)
//	_<port>._<proto>.<svc>.<ns>.svc.<zone>  SRV per named port
//	<reversed ip>.in-addr.arpa / ip6.arpa   PTR for cluster IPs and headless
//	                                     endpoints with a hostname
//	dns-version.<zone>                   TXT "1.1.0"
//
// Every answer is read from one snapshot of the registry, the same state
// the gRPC API serves: nothing is cached, so a write is visible in DNS as
// soon as it returns. Names outside the zone are refused (no recursion).
// As CoreDNS's kubernetes plugin, the handler only dispatches and the data
// source is an interface (Source).
package kubedns

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/servicemodel"
	"github.com/svcreg/svcreg/internal/spelling"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
)

// SchemaVersion is the version of the Kubernetes DNS specification served.
const SchemaVersion = "1.1.0"

// Snapshot is the registry state one answer is read from
// (*store.ReadTxn).
type Snapshot interface {
	Revision() int64
	Service(namespace, name string) (*svcregv1.Service, error)
	ListServices(q store.ListQuery) (store.Page[*svcregv1.Service], error)
	Endpoints(namespace, service string) ([]*svcregv1.Endpoint, error)
	EachEndpoint(namespace, service string, f func(*svcregv1.Endpoint) bool) error
	NamespaceHasServices(namespace string) (bool, error)
	ServiceByClusterIP(ip netip.Addr) (*svcregv1.Service, error)
	EndpointsByIP(ip string) ([]*svcregv1.Endpoint, error)
	InServiceRange(ip netip.Addr) bool
}

// Source opens a snapshot per question. It fails while the registry cannot
// answer completely (a server that has not caught up since it started):
// DNS then answers SERVFAIL, which resolvers retry and do not cache, never
// an NXDOMAIN they would.
type Source func() (Snapshot, error)

// Resolver answers questions for one zone from a source.
type Resolver struct {
	zone    string // fqdn, lower case: "cluster.local."
	ttl     uint32
	maxUDP  int
	source  Source
	onPanic func(any)
	hidden  func(namespace string) bool
	cache   answerCache
}

// Config configures a Resolver.
type Config struct {
	Zone string // such as "cluster.local"
	TTL  uint32 // of every record, in seconds
	// MaxUDPSize caps the EDNS0 payload of UDP answers; default 1232 (the
	// DNS flag day's size, CoreDNS's bufsize default). Larger answers are
	// truncated (TC) and clients retry over TCP.
	MaxUDPSize int
	// OnPanic hears of a panic while answering (the answer is SERVFAIL).
	OnPanic func(any)
	// Hidden namespaces get no answers over DNS, which carries no
	// credential: their names do not exist (NXDOMAIN), and reverse lookups
	// skip their addresses. Resolve's caller decides visibility itself.
	Hidden func(namespace string) bool
}

// DefaultMaxUDPSize is Config.MaxUDPSize's default.
const DefaultMaxUDPSize = 1232

// New returns a resolver.
func New(src Source, cfg Config) *Resolver {
	if cfg.MaxUDPSize == 0 {
		cfg.MaxUDPSize = DefaultMaxUDPSize
	}
	return &Resolver{zone: dns.Fqdn(strings.ToLower(strings.Trim(cfg.Zone, "."))), ttl: cfg.TTL,
		maxUDP: min(max(cfg.MaxUDPSize, dns.MinMsgSize), dns.MaxMsgSize), source: src, onPanic: cfg.OnPanic, hidden: cfg.Hidden}
}

// reads is one answer's view of a Snapshot: a failed read makes the whole
// answer SERVFAIL (err), so the record builders read plain values.
type reads struct {
	s   Snapshot
	err error
	// visible limits the answer to some namespaces (nil: all): the others
	// read as empty, as if they held nothing.
	visible func(namespace string) bool
}

func (v *reads) sees(namespace string) bool { return v.visible == nil || v.visible(namespace) }

func (v *reads) fail(err error) {
	if err != nil && v.err == nil {
		v.err = err
	}
}

func (v *reads) Revision() int64 { return v.s.Revision() }

// Service returns a service, or nil when it does not exist.
func (v *reads) Service(namespace, name string) *svcregv1.Service {
	if !v.sees(namespace) {
		return nil
	}
	svc, err := v.s.Service(namespace, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	v.fail(err)
	return svc
}

func (v *reads) Services(namespace string) []*svcregv1.Service {
	if !v.sees(namespace) {
		return nil
	}
	page, err := v.s.ListServices(store.ListQuery{Namespace: namespace})
	v.fail(err)
	return page.Items
}

func (v *reads) Endpoints(namespace, service string) []*svcregv1.Endpoint {
	if !v.sees(namespace) {
		return nil
	}
	eps, err := v.s.Endpoints(namespace, service)
	v.fail(err)
	return eps
}

func (v *reads) EachEndpoint(namespace, service string, f func(*svcregv1.Endpoint) bool) {
	if !v.sees(namespace) {
		return
	}
	v.fail(v.s.EachEndpoint(namespace, service, f))
}

func (v *reads) NamespaceHasServices(namespace string) bool {
	if !v.sees(namespace) {
		return false
	}
	ok, err := v.s.NamespaceHasServices(namespace)
	v.fail(err)
	return ok
}

func (v *reads) ServiceByClusterIP(ip netip.Addr) *svcregv1.Service {
	svc, err := v.s.ServiceByClusterIP(ip)
	if errors.Is(err, store.ErrNotFound) || err == nil && !v.sees(svc.GetNamespace()) {
		return nil
	}
	v.fail(err)
	return svc
}

func (v *reads) EndpointsByIP(ip string) []*svcregv1.Endpoint {
	eps, err := v.s.EndpointsByIP(ip)
	v.fail(err)
	if v.visible == nil {
		return eps
	}
	var out []*svcregv1.Endpoint
	for _, ep := range eps {
		if v.visible(ep.GetNamespace()) {
			out = append(out, ep)
		}
	}
	return out
}

func (v *reads) InServiceRange(ip netip.Addr) bool { return v.s.InServiceRange(ip) }

// Zone is the zone's fully qualified name.
func (r *Resolver) Zone() string { return r.zone }

// Answer is the outcome of one question.
type Answer struct {
	Rcode      int
	Answer     []dns.RR
	Authority  []dns.RR
	Additional []dns.RR
	// Authoritative: the name is in a zone this resolver answers for.
	Authoritative bool
	// Truncated: records were left out to keep to the size limit.
	Truncated bool
}

// budget bounds the bytes of endpoint records an answer builds: a UDP
// answer of 512 bytes holds a handful, so building hundreds only to drop
// them is waste. Records are counted at their smallest wire size (with
// name compression), so the budget always covers what fits; Truncate then
// trims exactly.
type budget int

const unlimited budget = 0

// Smallest wire sizes: a compressed owner (2), type, class, TTL and length
// (10), then the data: an IPv4 address (4), an IPv6 one (16), or an SRV's
// priority, weight and port (6) and a target of at least a label and a
// pointer (4).
const (
	minA    = 16
	minAAAA = 28
	minSRV  = 22
)

func budgetFor(maxSize int) budget { return budget(maxSize + 1) }

// full reports whether used bytes exhaust the budget.
func (b budget) full(used int) bool { return b != unlimited && used >= int(b) }

// Resolve answers one question; names are compared case-insensitively
// and answers are owned by the question's name as asked. It fails when the
// source does.
func (r *Resolver) Resolve(q dns.Question) (Answer, error) { return r.resolve(q, unlimited, nil) }

// ResolveVisible is Resolve limited to the namespaces visible accepts (a
// caller's readable ones); Config.Hidden does not apply.
func (r *Resolver) ResolveVisible(q dns.Question, visible func(namespace string) bool) (Answer, error) {
	return r.resolve(q, unlimited, visible)
}

func (r *Resolver) resolve(q dns.Question, limit budget, visible func(string) bool) (Answer, error) {
	snap, err := r.source()
	if err != nil {
		return Answer{Rcode: dns.RcodeServerFailure}, err
	}
	return r.answerFrom(snap, q, limit, visible)
}

// answerFrom answers q from snap.
func (r *Resolver) answerFrom(snap Snapshot, q dns.Question, limit budget, visible func(string) bool) (Answer, error) {
	v := &reads{s: snap, visible: visible}
	a := r.answer(v, q, limit)
	if v.err != nil {
		return Answer{Rcode: dns.RcodeServerFailure}, v.err
	}
	return a, nil
}

func (r *Resolver) answer(v *reads, q dns.Question, limit budget) Answer {
	name := strings.ToLower(dns.Fqdn(q.Name))
	if ip, ok := reverseIP(name); ok {
		return r.reverse(v, q, ip)
	}
	if !dns.IsSubDomain(r.zone, name) {
		return Answer{Rcode: dns.RcodeRefused}
	}
	rel := strings.TrimSuffix(strings.TrimSuffix(name, r.zone), ".")
	var labels []string
	if rel != "" {
		labels = strings.Split(rel, ".")
	}
	a := r.inZone(v, q, labels, limit)
	a.Authoritative = true
	if len(a.Answer) == 0 && (a.Rcode == dns.RcodeSuccess || a.Rcode == dns.RcodeNameError) {
		a.Authority = []dns.RR{r.soa(v)}
	}
	return a
}

func (r *Resolver) inZone(v *reads, q dns.Question, labels []string, limit budget) Answer {
	n := len(labels)
	switch {
	case n == 0: // the apex
		if q.Qtype == dns.TypeSOA {
			return Answer{Answer: []dns.RR{r.soa(v)}}
		}
		return Answer{} // NODATA
	case n == 1 && labels[0] == "dns-version":
		if q.Qtype == dns.TypeTXT {
			return Answer{Answer: []dns.RR{&dns.TXT{Hdr: r.hdr(q.Name, dns.TypeTXT), Txt: []string{SchemaVersion}}}}
		}
		return Answer{}
	case labels[n-1] != "svc":
		return Answer{Rcode: dns.RcodeNameError}
	case n == 1: // svc.<zone>: an empty non-terminal
		return Answer{}
	case !validLabel(labels[n-2]) || n > 2 && !validLabel(labels[n-3]):
		return Answer{Rcode: dns.RcodeNameError} // no namespace or service has such a name
	case n == 2: // <ns>.svc.<zone>
		if v.NamespaceHasServices(labels[0]) {
			return Answer{}
		}
		return Answer{Rcode: dns.RcodeNameError}
	}
	ns, svcName := labels[n-2], labels[n-3]
	svc := v.Service(ns, svcName)
	if svc == nil {
		return Answer{Rcode: dns.RcodeNameError}
	}
	switch n {
	case 3:
		return r.serviceRecords(v, q, svc, limit)
	case 4:
		if strings.HasPrefix(labels[0], "_") { // _<proto>.<svc>...: an empty non-terminal
			if portByProto(svc, labels[0][1:]) {
				return Answer{}
			}
			return Answer{Rcode: dns.RcodeNameError}
		}
		return r.endpointRecords(v, q, svc, labels[0])
	case 5:
		if strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_") {
			return r.srvRecords(v, q, svc, labels[0][1:], labels[1][1:], limit)
		}
	}
	return Answer{Rcode: dns.RcodeNameError}
}

// validLabel reports whether a question's label could name a namespace or
// a service (DNS-1123 labels), before anything is looked up.
func validLabel(l string) bool { return validation.IsDNS1123Label(l) == nil }

func (r *Resolver) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: r.ttl}
}

// soa is the zone's SOA; its serial is the registry revision.
func (r *Resolver) soa(v *reads) dns.RR {
	return &dns.SOA{Hdr: r.hdr(r.zone, dns.TypeSOA), Ns: "ns.dns." + r.zone, Mbox: "hostmaster." + r.zone,
		Serial: uint32(v.Revision()), Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: r.ttl}
}

func serviceFQDN(svc *svcregv1.Service, zone string) string {
	return svc.GetName() + "." + svc.GetNamespace() + ".svc." + zone
}

// serviceRecords: the cluster IP, a headless service's ready endpoints, or
// an EXTERNAL_NAME's CNAME.
func (r *Resolver) serviceRecords(v *reads, q dns.Question, svc *svcregv1.Service, limit budget) Answer {
	if svc.GetType() == svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME {
		return Answer{Answer: []dns.RR{&dns.CNAME{Hdr: r.hdr(q.Name, dns.TypeCNAME), Target: dns.Fqdn(strings.ToLower(svc.GetExternalName()))}}}
	}
	if !servicemodel.Headless(svc) {
		ip, err := netip.ParseAddr(svc.GetClusterIp())
		if err != nil {
			return Answer{}
		}
		if rr := r.addressRR(q.Name, q.Qtype, ip); rr != nil {
			return Answer{Answer: []dns.RR{rr}}
		}
		return Answer{}
	}
	var out []dns.RR
	anyReady, truncated, used := false, false, 0
	v.EachEndpoint(svc.GetNamespace(), svc.GetName(), func(ep *svcregv1.Endpoint) bool {
		if !servicemodel.Published(ep) {
			return true
		}
		anyReady = true
		if limit.full(used) {
			truncated = true
			return false
		}
		if ip, err := netip.ParseAddr(ep.GetIp()); err == nil {
			if rr := r.addressRR(q.Name, q.Qtype, ip); rr != nil {
				out = append(out, rr)
				used += addressSize(ip)
			}
		}
		return true
	})
	if !anyReady {
		return Answer{Rcode: dns.RcodeNameError} // a headless service without ready endpoints
	}
	return Answer{Answer: out, Truncated: truncated}
}

func addressSize(ip netip.Addr) int {
	if ip.Is4() {
		return minA
	}
	return minAAAA
}

// addressRR is an A or AAAA record when the question's type matches the
// address's family.
func (r *Resolver) addressRR(name string, qtype uint16, ip netip.Addr) dns.RR {
	switch {
	case ip.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY):
		return &dns.A{Hdr: r.hdr(name, dns.TypeA), A: net.IP(ip.AsSlice())}
	case ip.Is6() && !ip.Is4In6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
		return &dns.AAAA{Hdr: r.hdr(name, dns.TypeAAAA), AAAA: net.IP(ip.AsSlice())}
	}
	return nil
}

// publishedEndpoints are the endpoints DNS names (servicemodel.Published).
func publishedEndpoints(eps []*svcregv1.Endpoint) []*svcregv1.Endpoint {
	out := eps[:0:0]
	for _, ep := range eps {
		if servicemodel.Published(ep) {
			out = append(out, ep)
		}
	}
	return out
}

// endpointLabel is an endpoint's name under its service: its hostname, or
// its IP with dashes (as CoreDNS names endpoints without one).
func endpointLabel(ep *svcregv1.Endpoint) string {
	if ep.GetHostname() != "" {
		return ep.GetHostname()
	}
	return dashedIP(ep.GetIp())
}

func dashedIP(ip string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == ':' {
			return '-'
		}
		return r
	}, ip)
}

// endpointRecords: <host>.<svc>.<ns>.svc.<zone> of a headless service.
func (r *Resolver) endpointRecords(v *reads, q dns.Question, svc *svcregv1.Service, label string) Answer {
	if !servicemodel.Headless(svc) {
		return Answer{Rcode: dns.RcodeNameError}
	}
	var out []dns.RR
	found := false
	for _, ep := range publishedEndpoints(v.Endpoints(svc.GetNamespace(), svc.GetName())) {
		if endpointLabel(ep) != label {
			continue
		}
		found = true
		if ip, err := netip.ParseAddr(ep.GetIp()); err == nil {
			if rr := r.addressRR(q.Name, q.Qtype, ip); rr != nil {
				out = append(out, rr)
			}
		}
	}
	if !found {
		return Answer{Rcode: dns.RcodeNameError}
	}
	return Answer{Answer: out}
}

func portByProto(svc *svcregv1.Service, proto string) bool {
	for _, p := range svc.GetPorts() {
		if p.GetName() != "" && spelling.Protocol(p.GetProtocol()) == proto {
			return true
		}
	}
	return false
}

// srvRecords: _<port>._<proto>.<svc>.<ns>.svc.<zone> for a named port.
// A cluster IP service has one SRV to its own name; a headless one has one
// per ready endpoint, to the endpoint's name, weighted by the endpoint's
// weight, with the endpoints' addresses in the additional section.
func (r *Resolver) srvRecords(v *reads, q dns.Question, svc *svcregv1.Service, portName, proto string, limit budget) Answer {
	var sp *svcregv1.ServicePort
	for _, p := range svc.GetPorts() {
		if p.GetName() == portName && spelling.Protocol(p.GetProtocol()) == proto {
			sp = p
		}
	}
	if sp == nil {
		return Answer{Rcode: dns.RcodeNameError}
	}
	if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
		return Answer{}
	}
	target := serviceFQDN(svc, r.zone)
	if !servicemodel.Headless(svc) {
		srv := &dns.SRV{Hdr: r.hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(sp.GetPort()), Target: target}
		var extra []dns.RR
		if ip, err := netip.ParseAddr(svc.GetClusterIp()); err == nil {
			extra = r.targetAddress(target, ip)
		}
		return Answer{Answer: []dns.RR{srv}, Additional: extra}
	}
	var ans, extra []dns.RR
	truncated, used := false, 0
	v.EachEndpoint(svc.GetNamespace(), svc.GetName(), func(ep *svcregv1.Endpoint) bool {
		port, ok := servicemodel.EndpointPort(ep, sp)
		if !servicemodel.Published(ep) || !ok {
			return true
		}
		if limit.full(used) {
			truncated = true
			return false
		}
		host := endpointLabel(ep) + "." + target
		ans = append(ans, &dns.SRV{Hdr: r.hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: uint16(ep.GetWeight()), Port: uint16(port), Target: host})
		used += minSRV
		if ip, err := netip.ParseAddr(ep.GetIp()); err == nil {
			extra = append(extra, r.targetAddress(host, ip)...)
			used += addressSize(ip)
		}
		return true
	})
	if len(ans) == 0 {
		return Answer{Rcode: dns.RcodeNameError}
	}
	if truncated {
		extra = nil // the answer section does not fit: additional records go first
	}
	return Answer{Answer: ans, Additional: extra, Truncated: truncated}
}

func (r *Resolver) targetAddress(name string, ip netip.Addr) []dns.RR {
	qtype := dns.TypeA
	if ip.Is6() && !ip.Is4In6() {
		qtype = dns.TypeAAAA
	}
	if rr := r.addressRR(name, qtype, ip); rr != nil {
		return []dns.RR{rr}
	}
	return nil
}

// reverse answers PTR questions: cluster IPs, and headless endpoints with
// a hostname. The service range is ours (NXDOMAIN when unassigned); other
// addresses are answered when an endpoint has them, refused otherwise.
func (r *Resolver) reverse(v *reads, q dns.Question, ip netip.Addr) Answer {
	var out []dns.RR
	if svc := v.ServiceByClusterIP(ip); svc != nil && (q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY) {
		out = append(out, &dns.PTR{Hdr: r.hdr(q.Name, dns.TypePTR), Ptr: serviceFQDN(svc, r.zone)})
	}
	known := len(out) > 0
	for _, ep := range v.EndpointsByIP(ip.String()) {
		if ep.GetHostname() == "" || !servicemodel.Published(ep) {
			continue
		}
		svc := v.Service(ep.GetNamespace(), ep.GetService())
		if svc == nil || !servicemodel.Headless(svc) {
			continue
		}
		known = true
		if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
			out = append(out, &dns.PTR{Hdr: r.hdr(q.Name, dns.TypePTR), Ptr: ep.GetHostname() + "." + serviceFQDN(svc, r.zone)})
		}
	}
	switch {
	case known:
		return Answer{Answer: out, Authoritative: true}
	case v.InServiceRange(ip):
		return Answer{Rcode: dns.RcodeNameError, Authoritative: true, Authority: []dns.RR{r.soa(v)}}
	}
	return Answer{Rcode: dns.RcodeRefused}
}

// reverseIP parses a reverse-lookup name (in-addr.arpa or nibble
// ip6.arpa).
func reverseIP(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		parts := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, p := range parts {
			n, err := strconv.ParseUint(p, 10, 8)
			if err != nil || (len(p) > 1 && p[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	case strings.HasSuffix(name, ".ip6.arpa."):
		nibbles := strings.Split(strings.TrimSuffix(name, ".ip6.arpa."), ".")
		if len(nibbles) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, nb := range nibbles {
			n, err := strconv.ParseUint(nb, 16, 8)
			if err != nil || len(nb) != 1 {
				return netip.Addr{}, false
			}
			pos := 31 - i
			if pos%2 == 0 {
				b[pos/2] |= byte(n) << 4
			} else {
				b[pos/2] |= byte(n)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
