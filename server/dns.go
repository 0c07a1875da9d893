package server

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/kubedns"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
)

// dnsServers is the DNS frontend: UDP and TCP on one port.
type dnsServers struct {
	udp, tcp *dns.Server
	addr     string
}

// listenDNS binds UDP and TCP on the same port (port 0 picks one free for
// both).
func listenDNS(addr string, handler dns.Handler) (*dnsServers, error) {
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("DNS UDP listener: %w", err)
		}
		lis, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if _, port, _ := net.SplitHostPort(addr); port == "0" && attempt < 10 {
				continue // the kernel gave UDP a port TCP has in use: try another
			}
			return nil, fmt.Errorf("DNS TCP listener: %w", err)
		}
		return &dnsServers{
			udp:  &dns.Server{PacketConn: pc, Handler: handler},
			tcp:  &dns.Server{Listener: lis, Handler: handler},
			addr: pc.LocalAddr().String(),
		}, nil
	}
}

func (d *dnsServers) serve(errc chan<- error) {
	go func() {
		if err := d.udp.ActivateAndServe(); err != nil {
			errc <- fmt.Errorf("DNS over UDP: %w", err)
		}
	}()
	go func() {
		if err := d.tcp.ActivateAndServe(); err != nil {
			errc <- fmt.Errorf("DNS over TCP: %w", err)
		}
	}()
}

func (d *dnsServers) shutdown(ctx context.Context) {
	d.udp.ShutdownContext(ctx)
	d.tcp.ShutdownContext(ctx)
}

func (r *registry) Resolve(_ context.Context, req *svcregv1.ResolveRequest) (*svcregv1.ResolveResponse, error) {
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
	if !strings.HasSuffix(name, ".") && !dns.IsSubDomain(r.dns.Zone(), strings.ToLower(fqdn)) && !strings.HasSuffix(strings.ToLower(fqdn), ".arpa.") {
		fqdn = name + ".svc." + r.dns.Zone() // a resolv.conf search path
	}
	a := r.dns.Resolve(dns.Question{Name: fqdn, Qtype: qtype, Qclass: dns.ClassINET})
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

func (r *registry) GetEnvironment(_ context.Context, req *svcregv1.GetEnvironmentRequest) (*svcregv1.GetEnvironmentResponse, error) {
	ns := req.GetNamespace()
	if ns == "" {
		ns = store.DefaultNamespace
	}
	if msgs := validation.IsDNS1123Label(ns); msgs != nil {
		return nil, validation.Invalids("namespace", ns, msgs)
	}
	resp := &svcregv1.GetEnvironmentResponse{}
	for _, v := range kubedns.Environment(r.store.View(), ns) {
		resp.Variables = append(resp.Variables, &svcregv1.EnvironmentVariable{Name: v.Name, Value: v.Value})
	}
	return resp, nil
}
