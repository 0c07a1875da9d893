// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package console

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/manifest"
	"github.com/svcreg/svcreg/internal/meta"
)

// Delete deletes services or instances by name, as kubectl delete:
// `service "web" deleted`, and with ignoreNotFound a missing one is fine.
func (c *Console) Delete(ctx context.Context, kind meta.Kind, names []string, s Scope, ignoreNotFound bool) error {
	failed := 0
	for _, name := range names {
		if err := c.deleteOne(ctx, kind, s.namespace(), name, ignoreNotFound); err != nil {
			failed++
			fmt.Fprintln(c.Err, ErrorText(err))
		}
	}
	return failures(failed, len(names))
}

// DeleteObjects deletes what a manifest declares. Endpoints of a
// selectorless service are emptied, unless the service goes too.
func (c *Console) DeleteObjects(ctx context.Context, objs []manifest.Object, ignoreNotFound bool) error {
	services := map[string]bool{}
	for i := range objs {
		if objs[i].Service != nil {
			services[meta.Key(objs[i].Namespace(), objs[i].Name())] = true
		}
	}
	failed := 0
	for i := range objs {
		obj := &objs[i]
		var err error
		switch {
		case obj.Endpoints != nil && services[meta.Key(obj.Namespace(), obj.Name())]:
			continue
		case obj.Endpoints != nil:
			_, err = c.API.ReplaceEndpoints(ctx, &svcregv1.ReplaceEndpointsRequest{Namespace: obj.Namespace(), Service: obj.Name()})
			if err == nil {
				fmt.Fprintf(c.Out, "endpoints %q emptied\n", obj.Name())
			}
		default:
			err = c.deleteOne(ctx, obj.Kind(), obj.Namespace(), obj.Name(), ignoreNotFound)
		}
		if err != nil {
			failed++
			fmt.Fprintln(c.Err, ErrorText(err))
		}
	}
	return failures(failed, len(objs))
}

func (c *Console) deleteOne(ctx context.Context, kind meta.Kind, namespace, name string, ignoreNotFound bool) error {
	var err error
	switch kind {
	case Services:
		_, err = c.API.DeleteService(ctx, &svcregv1.DeleteServiceRequest{Namespace: namespace, Name: name})
	case Instances:
		_, err = c.API.DeleteInstance(ctx, &svcregv1.DeleteInstanceRequest{Namespace: namespace, Name: name})
	default:
		return fmt.Errorf("delete endpoints through their service, or with delete -f")
	}
	if isNotFound(err) && ignoreNotFound {
		return nil
	}
	if err != nil {
		return notFoundAs(err, kind, name)
	}
	fmt.Fprintf(c.Out, "%s %q deleted\n", singular(kind), name)
	return nil
}

// Drain marks instances terminating (their endpoints stop taking new
// connections and RPCs, docs/ipvs.md) or, with drain false, serving again.
func (c *Console) Drain(ctx context.Context, names []string, s Scope, drain bool) error {
	verb := "drained"
	if !drain {
		verb = "undrained"
	}
	failed := 0
	for _, name := range names {
		_, err := c.API.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{
			Instance:   &svcregv1.Instance{Namespace: s.namespace(), Name: name, Terminating: drain},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"terminating"}}})
		if err != nil {
			failed++
			fmt.Fprintln(c.Err, ErrorText(notFoundAs(err, Instances, name)))
			continue
		}
		fmt.Fprintf(c.Out, "instance/%s %s\n", name, verb)
	}
	return failures(failed, len(names))
}
