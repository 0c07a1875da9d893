package store

import (
	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// EventType is what happened to an object.
type EventType uint8

// The event types of the change feed.
const (
	Added EventType = iota + 1
	Modified
	Deleted
)

// Kind is the kind of object an event is about.
type Kind uint8

// The kinds of the change feed.
const (
	KindService Kind = iota + 1
	KindInstance
	KindEndpoint
)

// Event is one object changed by a committed command: the change feed that
// watches, leases and DNS consume. Events of one command share its
// revision. Before and After are the stored objects (never mutated); nil
// when the object did not exist on that side.
type Event struct {
	Revision  int64
	Type      EventType
	Kind      Kind
	Namespace string
	// Service is the service an event concerns: the service itself, or an
	// endpoint's service; empty for instances.
	Service string
	// Name is the object's name: the service, the instance, or an
	// endpoint's instance.
	Name   string
	Before proto.Message
	After  proto.Message
}

// Object is the object's latest state: After, or Before for a deletion.
func (e *Event) Object() proto.Message {
	if e.After != nil {
		return e.After
	}
	return e.Before
}

// CommitHook receives the events of each committed command, in revision
// order, while the store's write lock is held: it must be quick and never
// block (append to a log, update a map). It is where watches and leases
// learn about changes without a write ever waiting on a reader.
type CommitHook func(events []Event)

// OnCommit registers a hook. Register hooks before the first write.
func (s *Store) OnCommit(h CommitHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, h)
}

// eventsOf turns memdb's tracked changes into events, in change order.
func eventsOf(rev int64, changes memdb.Changes) []Event {
	events := make([]Event, 0, len(changes))
	for _, c := range changes {
		if c.Table != tableServices && c.Table != tableInstances && c.Table != tableEndpoints {
			continue // allocations and the revision are not objects
		}
		ev := Event{Revision: rev}
		switch {
		case c.Created():
			ev.Type = Added
		case c.Deleted():
			ev.Type = Deleted
		default:
			ev.Type = Modified
		}
		if c.Before != nil {
			ev.Before = c.Before.(proto.Message)
		}
		if c.After != nil {
			ev.After = c.After.(proto.Message)
		}
		switch c.Table {
		case tableServices:
			svc := ev.Object().(*svcregv1.Service)
			ev.Kind, ev.Namespace, ev.Service, ev.Name = KindService, svc.GetNamespace(), svc.GetName(), svc.GetName()
		case tableInstances:
			inst := ev.Object().(*svcregv1.Instance)
			ev.Kind, ev.Namespace, ev.Name = KindInstance, inst.GetNamespace(), inst.GetName()
		case tableEndpoints:
			ep := ev.Object().(*svcregv1.Endpoint)
			ev.Kind, ev.Namespace, ev.Service, ev.Name = KindEndpoint, ep.GetNamespace(), ep.GetService(), ep.GetInstance()
		}
		events = append(events, ev)
	}
	return events
}

// expireInstancesTxn deletes the instances whose leases lapsed, each only
// if it is still at the revision its lease was armed at.
func (s *Store) expireInstancesTxn(ctx *applyCtx, req *storev1.ExpireInstances) (*Result, error) {
	for _, ref := range req.GetInstances() {
		inst, err := instanceTxn(ctx.txn.Txn, ref.GetNamespace(), ref.GetName())
		if err != nil || inst.GetResourceVersion() != ref.GetResourceVersion() {
			continue // gone, re-registered or updated since: the lease was re-armed
		}
		if err := ctx.txn.Delete(tableInstances, inst); err != nil {
			return nil, err
		}
		if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, inst.GetNamespace(), inst.GetName(), nil); err != nil {
			return nil, err
		}
	}
	return &Result{}, nil
}
