// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"strings"

	"github.com/miekg/dns"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/kubedns"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/validation"
)

// discovery serves the DNS-shaped reads: Resolve (the DNS server's answers
// over gRPC) and GetEnvironment (kubelet's variables). Both read this
// server's own store, once it has caught up, as DNS does.
type discovery struct {
	dns    *kubedns.Resolver
	source kubedns.Source
}

func (d *discovery) Resolve(ctx context.Context, req *svcregv1.ResolveRequest) (*svcregv1.ResolveResponse, error) {
	name := strings.TrimSpace(req.GetName())
	var errs validation.ErrorList
	switch {
	case name == "":
		errs = append(errs, validation.Required("name", ""))
	case len(name) > 254 || !validName(name):
		errs = append(errs, validation.Invalid("name", name, "must be a domain name"))
	}
	typ := strings.ToUpper(req.GetType())
	if typ == "" {
		typ = "A"
	}
	qtype, ok := dns.StringToType[typ]
	if !ok {
		errs = append(errs, validation.NotSupported("type", req.GetType(), []string{"A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "SOA"}))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	fqdn := dns.Fqdn(name)
	if !strings.HasSuffix(name, ".") && !dns.IsSubDomain(d.dns.Zone(), strings.ToLower(fqdn)) && !strings.HasSuffix(strings.ToLower(fqdn), ".arpa.") {
		fqdn = name + ".svc." + d.dns.Zone() // a resolv.conf search path
	}
	a, err := d.dns.ResolveVisible(dns.Question{Name: fqdn, Qtype: qtype, Qclass: dns.ClassINET}, visibleTo(ctx))
	if err != nil {
		return nil, err
	}
	return &svcregv1.ResolveResponse{
		Rcode:      dns.RcodeToString[a.Rcode],
		Answer:     records(a.Answer),
		Authority:  records(a.Authority),
		Additional: records(a.Additional),
	}, nil
}

func validName(name string) bool {
	_, ok := dns.IsDomainName(name)
	return ok
}

func records(rrs []dns.RR) []*svcregv1.DnsRecord {
	out := make([]*svcregv1.DnsRecord, 0, len(rrs))
	for _, rr := range rrs {
		h := rr.Header()
		rec := &svcregv1.DnsRecord{Name: h.Name, Type: dns.TypeToString[h.Rrtype], Ttl: h.Ttl,
			Data: strings.TrimPrefix(rr.String(), h.String())}
		switch rr := rr.(type) {
		case *dns.A:
			rec.Address = rr.A.String()
		case *dns.AAAA:
			rec.Address = rr.AAAA.String()
		case *dns.SRV:
			rec.Target, rec.Port, rec.Priority, rec.Weight = rr.Target, uint32(rr.Port), uint32(rr.Priority), uint32(rr.Weight)
		case *dns.CNAME:
			rec.Target = rr.Target
		case *dns.PTR:
			rec.Target = rr.Ptr
		case *dns.TXT:
			rec.Text = rr.Txt
		}
		out = append(out, rec)
	}
	return out
}

func (d *discovery) GetEnvironment(_ context.Context, req *svcregv1.GetEnvironmentRequest) (*svcregv1.GetEnvironmentResponse, error) {
	ns := meta.Namespace(req.GetNamespace())
	if msgs := validation.IsDNS1123Label(ns); msgs != nil {
		return nil, validation.Invalids("namespace", ns, msgs)
	}
	snap, err := d.source()
	if err != nil {
		return nil, err
	}
	vars, err := kubedns.Environment(snap, ns)
	if err != nil {
		return nil, err
	}
	resp := &svcregv1.GetEnvironmentResponse{}
	for _, v := range vars {
		resp.Variables = append(resp.Variables, &svcregv1.EnvironmentVariable{Name: v.Name, Value: v.Value})
	}
	return resp, nil
}
