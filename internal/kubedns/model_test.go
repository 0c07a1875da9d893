// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubedns

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/servicemodel/modeltest"
	"github.com/svcreg/svcreg/internal/store"
)

// oneService is a snapshot holding one service and its endpoints.
type oneService struct {
	svc *svcregv1.Service
	eps []*svcregv1.Endpoint
}

func (o oneService) Revision() int64 { return 1 }
func (o oneService) Service(ns, name string) (*svcregv1.Service, error) {
	if ns == o.svc.GetNamespace() && name == o.svc.GetName() {
		return o.svc, nil
	}
	return nil, store.ErrNotFound
}
func (o oneService) ListServices(store.ListQuery) (store.Page[*svcregv1.Service], error) {
	return store.Page[*svcregv1.Service]{Items: []*svcregv1.Service{o.svc}}, nil
}
func (o oneService) Endpoints(string, string) ([]*svcregv1.Endpoint, error) { return o.eps, nil }
func (o oneService) EachEndpoint(_, _ string, f func(*svcregv1.Endpoint) bool) error {
	for _, ep := range o.eps {
		if !f(ep) {
			break
		}
	}
	return nil
}
func (o oneService) NamespaceHasServices(ns string) (bool, error) {
	return ns == o.svc.GetNamespace(), nil
}
func (o oneService) ServiceByClusterIP(netip.Addr) (*svcregv1.Service, error) {
	return nil, errors.New("none")
}
func (o oneService) EndpointsByIP(string) ([]*svcregv1.Endpoint, error) { return nil, nil }
func (o oneService) InServiceRange(netip.Addr) bool                     { return false }

// TestServiceModel runs the service model's table against DNS: a
// headless service's A, AAAA and SRV records name exactly the endpoints
// the model publishes (SRV: those with the port too).
func TestServiceModel(t *testing.T) {
	for _, c := range modeltest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			svc := modeltest.Service(true)
			r := New(func() (Snapshot, error) { return oneService{svc, c.Proto()}, nil }, Config{Zone: "cluster.local", TTL: 5})
			var want, got, wantSRV, gotSRV []string
			for _, e := range c.Endpoints {
				if e.Published {
					want = append(want, e.IP)
					if e.HasPort && c.PortName != "" {
						wantSRV = append(wantSRV, e.Name)
					}
				}
			}
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
				q := new(dns.Msg).SetQuestion("web.shop.svc.cluster.local.", qt)
				for _, rr := range r.Reply(q, false).Answer {
					switch a := rr.(type) {
					case *dns.A:
						got = append(got, a.A.String())
					case *dns.AAAA:
						got = append(got, a.AAAA.String())
					}
				}
			}
			if c.PortName != "" {
				q := new(dns.Msg).SetQuestion("_"+c.PortName+"._tcp.web.shop.svc.cluster.local.", dns.TypeSRV)
				for _, rr := range r.Reply(q, false).Answer {
					srv := rr.(*dns.SRV)
					gotSRV = append(gotSRV, dns.SplitDomainName(srv.Target)[0])
					if int32(srv.Port) != c.EndpointPort() {
						t.Errorf("SRV port %d, want %d", srv.Port, c.EndpointPort())
					}
				}
			}
			for _, s := range [][]string{want, got, wantSRV, gotSRV} {
				slices.Sort(s)
			}
			if !slices.Equal(got, want) {
				t.Errorf("addresses %v, want %v", got, want)
			}
			if !slices.Equal(gotSRV, wantSRV) {
				t.Errorf("SRV targets %v, want %v", gotSRV, wantSRV)
			}
		})
	}
}
