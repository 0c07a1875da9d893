// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"github.com/hashicorp/go-memdb"
	"github.com/svcreg/svcreg/internal/meta"
	"google.golang.org/protobuf/proto"

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

// Kind is the kind of object an event is about (meta.Kind: one type
// every layer shares).
type Kind = meta.Kind

// The kinds of the change feed.
const (
	KindService  = meta.KindService
	KindInstance = meta.KindInstance
	KindEndpoint = meta.KindEndpoint
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
