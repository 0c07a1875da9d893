// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/validation"
)

// Limits bound what one object may hold, so that no single write can make
// every list, watch and snapshot heavy. Each is a flag of `svcreg serve`.
type Limits struct {
	// Labels is the most labels an object may have, and the most pairs in
	// a service's selector; default 64.
	Labels int
	// LabelBytes bounds the total size of an object's label (or selector)
	// keys and values; default 16 KiB.
	LabelBytes int
	// Annotations is the most annotations a service may have; default 256.
	Annotations int
	// AnnotationBytes bounds their total size; default 256 KiB, Kubernetes'
	// TotalAnnotationSizeLimitB.
	AnnotationBytes int
	// Ports is the most ports a service or an instance may have; default
	// 100 (an EndpointSlice's maximum).
	Ports int
	// Endpoints is the most hand-written endpoints one ReplaceEndpoints may
	// set; default 1000 (an EndpointSlice's maximum).
	Endpoints int
}

// DefaultLimits are the limits of a Config that sets none.
var DefaultLimits = Limits{Labels: 64, LabelBytes: 16 << 10, Annotations: 256, AnnotationBytes: 256 << 10, Ports: 100, Endpoints: 1000}

// Prepare is a write's stateless check, run where the request arrives and
// again where it is proposed, before anything is proposed: it validates the
// request's own fields and fills their defaults, in place (a create then
// carries the object as it will be stored). A command it rejects never
// becomes a log entry.
func Prepare(cmd *storev1.Command, lim Limits) error {
	switch op := cmd.GetOp().(type) {
	case *storev1.Command_CreateService:
		svc, errs := prepareService(op.CreateService.GetService(), lim)
		if len(errs) > 0 {
			return errs
		}
		op.CreateService.Service = svc
	case *storev1.Command_CreateInstance:
		inst, errs := prepareInstance(op.CreateInstance.GetInstance(), lim)
		if len(errs) > 0 {
			return errs
		}
		op.CreateInstance.Instance = inst
	case *storev1.Command_UpdateService:
		if op.UpdateService.GetService() == nil {
			return validation.ErrorList{validation.Required("service", "")}
		}
		s := op.UpdateService.Service
		s.Namespace = meta.Namespace(s.Namespace)
		return ObjectRef(KindService, s.Namespace, s.GetName(), "service.namespace", "service.name").Err()
	case *storev1.Command_UpdateInstance:
		if op.UpdateInstance.GetInstance() == nil {
			return validation.ErrorList{validation.Required("instance", "")}
		}
		i := op.UpdateInstance.Instance
		i.Namespace = meta.Namespace(i.Namespace)
		return ObjectRef(KindInstance, i.Namespace, i.GetName(), "instance.namespace", "instance.name").Err()
	case *storev1.Command_DeleteService:
		op.DeleteService.Namespace = meta.Namespace(op.DeleteService.Namespace)
		return ObjectRef(KindService, op.DeleteService.Namespace, op.DeleteService.GetName(), "namespace", "name").Err()
	case *storev1.Command_DeleteInstance:
		op.DeleteInstance.Namespace = meta.Namespace(op.DeleteInstance.Namespace)
		return ObjectRef(KindInstance, op.DeleteInstance.Namespace, op.DeleteInstance.GetName(), "namespace", "name").Err()
	case *storev1.Command_ReplaceEndpoints:
		r := op.ReplaceEndpoints
		r.Namespace = meta.Namespace(r.Namespace)
		errs := ObjectRef(KindService, r.Namespace, r.GetService(), "namespace", "service")
		if n := len(r.GetEndpoints()); n > lim.Endpoints {
			errs = append(errs, validation.TooMany("endpoints", n, lim.Endpoints))
		}
		return errs.Err()
	case *storev1.Command_CreateToken:
		return prepareToken(op.CreateToken).Err()
	case *storev1.Command_DeleteToken:
		if a := op.DeleteToken.GetAccessor(); !auth.ValidAccessor(a) {
			return validation.ErrorList{validation.Invalid("accessor", a, "must be a token's accessor: 1 to 64 lower-case letters, digits and '-'")}
		}
	case *storev1.Command_SetNode:
		return prepareSetNode(op.SetNode).Err()
	case *storev1.Command_ExpireInstances:
		return prepareExpire(op.ExpireInstances, lim).Err()
	case *storev1.Command_ReportProbe:
		return prepareReportProbe(op.ReportProbe).Err()
	case nil:
		return validation.ErrorList{validation.Required("op", "a command names what it does")}
	default:
		return validation.ErrorList{validation.Invalid("op", fmt.Sprintf("%T", cmd.GetOp()), "not a command this server knows")}
	}
	return nil
}

// The servers' own commands are checked as a client's are: a peer is
// trusted to be a server of the cluster, not to send only sound commands.

// maxNodeID is the longest server ID (the peer handshake carries it in
// one length byte).
const maxNodeID = 255

// prepareSetNode checks a server's address record: an ID, a Raft address
// (host:port, or a name for an in-memory transport), and the peer and
// client addresses to dial when it has them (a server alone has no peer
// port).
func prepareSetNode(n *storev1.SetNode) validation.ErrorList {
	errs := checkToken("set_node.id", n.GetId(), "a server's Raft ID")
	errs = append(errs, checkToken("set_node.raft_address", n.GetRaftAddress(), "its Raft address")...)
	for _, a := range []struct {
		field validation.Path
		value string
	}{{"set_node.peer_address", n.GetPeerAddress()}, {"set_node.grpc_address", n.GetGrpcAddress()}} {
		if a.value == "" {
			continue
		}
		if msg := checkHostPort(a.value); msg != "" {
			errs = append(errs, validation.Invalid(a.field, a.value, msg))
		}
	}
	return errs
}

// checkToken requires a printable word of at most maxNodeID bytes.
func checkToken(field validation.Path, v, what string) validation.ErrorList {
	switch {
	case v == "":
		return validation.ErrorList{validation.Required(field, what)}
	case len(v) > maxNodeID:
		return validation.ErrorList{validation.TooLong(field, maxNodeID)}
	case strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return validation.ErrorList{validation.Invalid(field, v, "must not contain spaces or control characters")}
	}
	return nil
}

// checkHostPort is "" for a host:port a server can dial.
func checkHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "must be host:port"
	}
	if host == "" || len(host) > 253 {
		return "must name a host"
	}
	if n, err := strconv.Atoi(port); err != nil || len(validation.IsValidPortNum(int64(n))) > 0 {
		return "the port must be a number between 1 and 65535"
	}
	return ""
}

// maxExpire bounds the instances one expiry command deletes (the lease
// manager sends far fewer at once).
const maxExpire = 10_000

// prepareExpire checks an expiry: a bounded list of instance references.
func prepareExpire(e *storev1.ExpireInstances, _ Limits) validation.ErrorList {
	var errs validation.ErrorList
	if n := len(e.GetInstances()); n > maxExpire {
		return validation.ErrorList{validation.TooMany("expire_instances.instances", n, maxExpire)}
	}
	for i, ref := range e.GetInstances() {
		f := validation.Path("expire_instances.instances").Index(i)
		ref.Namespace = meta.Namespace(ref.Namespace)
		errs = append(errs, ObjectRef(KindInstance, ref.GetNamespace(), ref.GetName(), f.Child("namespace"), f.Child("name"))...)
	}
	return errs
}

// ObjectRef checks the namespace (already defaulted) and name that
// identify one service or instance, reported under the fields given: a
// name that no object of that kind could have is refused before it is
// looked up.
func ObjectRef(kind Kind, namespace, name string, nsField, nameField validation.Path) validation.ErrorList {
	rule := validation.IsDNS1123Subdomain // instances
	if kind == KindService {
		rule = validation.IsDNS1035Label
	}
	return append(validateName(name, nameField, rule), validateNamespace(namespace, nsField)...)
}

// Precheck is a prepared write's check against the current state, run by
// the leader before it proposes: the state machine will decide again
// (entries in flight may change the state meanwhile), but what fails here
// is not proposed. It writes nothing.
//
// A retry of a request already applied passes: its answer is the
// original's (the state machine's request-id dedup), not what the state
// now says of a second attempt (a create retried after its answer was
// lost would otherwise read ALREADY_EXISTS, its own doing).
func (s *Store) Precheck(cmd *storev1.Command) error {
	if id := cmd.GetRequestId(); id != "" {
		s.mu.Lock()
		_, applied := s.requests.lookup(keyOfRequest(id), nil)
		s.mu.Unlock()
		if applied {
			return nil
		}
	}
	txn := s.db.Load().Txn(false)
	var err error
	switch op := cmd.GetOp().(type) {
	case *storev1.Command_CreateService:
		svc := op.CreateService.GetService()
		err = nameFreeTxn(txn, tableServices, svc.GetNamespace(), svc.GetName())
	case *storev1.Command_CreateInstance:
		inst := op.CreateInstance.GetInstance()
		err = nameFreeTxn(txn, tableInstances, inst.GetNamespace(), inst.GetName())
	case *storev1.Command_UpdateService:
		_, _, err = s.mergeServiceTxn(txn, op.UpdateService)
	case *storev1.Command_UpdateInstance:
		_, _, err = s.mergeInstanceTxn(txn, op.UpdateInstance, cmd.GetOwner(), cmd.GetRequireOwner())
	case *storev1.Command_DeleteService:
		_, err = deletableServiceTxn(txn, op.DeleteService)
	case *storev1.Command_DeleteInstance:
		_, err = deletableInstanceTxn(txn, op.DeleteInstance, cmd.GetOwner(), cmd.GetRequireOwner())
	case *storev1.Command_CreateToken:
		err = tokenFreeTxn(txn, op.CreateToken)
	case *storev1.Command_DeleteToken:
		_, err = tokenTxn(txn, indexID, op.DeleteToken.GetAccessor())
	case *storev1.Command_ReplaceEndpoints:
		_, _, err = s.replacementTxn(txn, op.ReplaceEndpoints)
	case *storev1.Command_ReportProbe:
		_, err = probedInstanceTxn(txn, op.ReportProbe)
	}
	return err
}

// validated reports whether a stored object passes today's validation:
// snapshots from elsewhere are checked with it before they are installed.
func (s *Store) validated(obj any) error {
	switch o := obj.(type) {
	case *svcregv1.Service:
		return ValidateService(o, "service", s.cfg.Limits).Err()
	case *svcregv1.Instance:
		return ValidateInstance(o, "instance", s.cfg.Limits).Err()
	}
	return nil
}
