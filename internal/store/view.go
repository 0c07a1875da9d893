package store

import (
	"net/netip"
	"strings"

	"github.com/hashicorp/go-memdb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// View is a consistent, lock-free read of the store at one revision, for
// readers that ask several questions per request (a DNS query).
type View struct {
	txn *memdb.Txn
	cfg Config
}

// View opens a read view.
func (s *Store) View() View { return View{txn: s.db.Load().Txn(false), cfg: s.cfg} }

// Revision is the view's revision.
func (v View) Revision() int64 {
	rev, _ := revisionTxn(v.txn)
	return rev
}

// Service returns a service, or nil.
func (v View) Service(namespace, name string) *svcregv1.Service {
	svc, _ := serviceTxn(v.txn, namespace, name)
	return svc
}

// Endpoints returns a service's endpoints in instance order.
func (v View) Endpoints(namespace, service string) []*svcregv1.Endpoint {
	eps, _ := endpointsTxn(v.txn, namespace, service)
	return eps
}

// EachEndpoint calls f with a service's endpoints in instance order until
// f returns false, without collecting them.
func (v View) EachEndpoint(namespace, service string, f func(*svcregv1.Endpoint) bool) {
	it, err := v.txn.Get(tableEndpoints, indexID+"_prefix", endpointKey(namespace, service, ""))
	if err != nil {
		return
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if !f(obj.(*svcregv1.Endpoint)) {
			return
		}
	}
}

// Services returns the services of a namespace in name order.
func (v View) Services(namespace string) []*svcregv1.Service {
	it, err := v.txn.Get(tableServices, indexID+"_prefix", namespace+"/")
	if err != nil {
		return nil
	}
	var out []*svcregv1.Service
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*svcregv1.Service))
	}
	return out
}

// NamespaceHasServices reports whether a namespace holds any service.
func (v View) NamespaceHasServices(namespace string) bool {
	obj, err := v.txn.First(tableServices, indexID+"_prefix", namespace+"/")
	return err == nil && obj != nil
}

// ServiceByClusterIP returns the service holding a cluster IP, or nil.
func (v View) ServiceByClusterIP(ip netip.Addr) *svcregv1.Service {
	obj, err := v.txn.First(tableAllocations, indexID, ipAllocationKey(ip))
	if err != nil || obj == nil {
		return nil
	}
	ns, name, _ := strings.Cut(obj.(*allocation).Owner, "/")
	return v.Service(ns, name)
}

// EndpointsByIP returns the endpoints with an IP, in every service.
func (v View) EndpointsByIP(ip string) []*svcregv1.Endpoint {
	it, err := v.txn.Get(tableEndpoints, indexIP, ip)
	if err != nil {
		return nil
	}
	var out []*svcregv1.Endpoint
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*svcregv1.Endpoint))
	}
	return out
}

// InServiceRange reports whether ip is in the cluster IP range.
func (v View) InServiceRange(ip netip.Addr) bool { return v.cfg.ServiceIPs.prefix.Contains(ip) }
