// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package console

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/manifest"
	"github.com/svcreg/svcreg/internal/meta"
)

// ErrFailed: some objects failed; each failure was printed on stderr.
var ErrFailed = errors.New("some objects failed")

// failures is a command's outcome after it went on past failed objects.
func failures(failed, total int) error {
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", ErrFailed, failed, total)
	}
	return nil
}

// progressEvery: a long apply says how far it got on stderr every this
// many objects.
const progressEvery = 100

// order applies services before what lives in them.
func order(objs []manifest.Object) {
	rank := map[meta.Kind]int{manifest.KindService: 0, manifest.KindInstance: 1, manifest.KindEndpoints: 2}
	sort.SliceStable(objs, func(i, j int) bool { return rank[objs[i].Kind()] < rank[objs[j].Kind()] })
}

// Apply creates what does not exist and updates what differs, one line
// per object (created, configured, unchanged) as kubectl apply. With
// dryRun nothing is written: each write is sent with validate_only, so the
// server checks it exactly as it would the write (its ranges, conflicts,
// the service's kind) and says what would change.
func (c *Console) Apply(ctx context.Context, objs []manifest.Object, dryRun bool) error {
	order(objs)
	failed := 0
	suffix := ""
	if dryRun {
		suffix = " (dry run)"
	}
	for i := range objs {
		obj := &objs[i]
		for _, w := range obj.Warnings {
			fmt.Fprintln(c.Err, "Warning: "+w)
		}
		var verb string
		var err error
		switch {
		case obj.Service != nil:
			verb, err = c.applyService(ctx, obj.Service, dryRun)
		case obj.Instance != nil:
			verb, err = c.applyInstance(ctx, obj.Instance, dryRun)
		default:
			verb, err = c.applyEndpoints(ctx, obj.Endpoints, dryRun)
		}
		if err != nil {
			failed++
			fmt.Fprintf(c.Err, "%s (when applying %s %s/%s from %s)\n", ErrorText(err), obj.Kind().Document(), obj.Namespace(), obj.Name(), obj.Source)
			continue
		}
		fmt.Fprintf(c.Out, "%s/%s %s%s\n", singular(obj.Kind()), obj.Name(), verb, suffix)
		if n := i + 1; len(objs) >= progressEvery*2 && n%progressEvery == 0 && n < len(objs) {
			fmt.Fprintf(c.Err, "applied %d of %d objects\n", n, len(objs)) // stdout may be a pipe or a file
		}
	}
	return failures(failed, len(objs))
}

// declared clears what the registry sets, so a document printed by get
// applies again however the object changed since: apply says what should
// be, not which revision it was read at.
func declared[T proto.Message](m T) T {
	m = proto.Clone(m).(T)
	switch o := any(m).(type) {
	case *svcregv1.Service:
		o.Uid, o.ResourceVersion, o.Etag, o.CreateTime = "", 0, "", nil
	case *svcregv1.Instance:
		o.Uid, o.ResourceVersion, o.Etag, o.CreateTime, o.LeaseExpireTime, o.Owner = "", 0, "", nil, nil, ""
	}
	return m
}

func (c *Console) applyService(ctx context.Context, svc *svcregv1.Service, dryRun bool) (string, error) {
	svc = declared(svc)
	got, err := c.API.GetService(ctx, &svcregv1.GetServiceRequest{Namespace: svc.GetNamespace(), Name: svc.GetName()})
	if isNotFound(err) {
		_, err = c.API.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: svc, ValidateOnly: dryRun})
		return "created", err
	}
	if err != nil {
		return "", err
	}
	old := got.GetService()
	resp, err := c.API.UpdateService(ctx, &svcregv1.UpdateServiceRequest{Service: svc, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"*"}}, ValidateOnly: dryRun})
	if err != nil {
		return "", err
	}
	return changedVerb(resp.GetService().GetResourceVersion() != old.GetResourceVersion()), nil
}

func changedVerb(changed bool) string {
	if changed {
		return "configured"
	}
	return "unchanged"
}

func (c *Console) applyInstance(ctx context.Context, inst *svcregv1.Instance, dryRun bool) (string, error) {
	inst = declared(inst)
	got, err := c.API.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: inst.GetNamespace(), Name: inst.GetName()})
	if isNotFound(err) {
		_, err = c.API.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst, ValidateOnly: dryRun})
		return "created", err
	}
	if err != nil {
		return "", err
	}
	old := got.GetInstance()
	resp, err := c.API.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: inst, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"*"}}, ValidateOnly: dryRun})
	if err != nil {
		return "", err
	}
	return changedVerb(resp.GetInstance().GetResourceVersion() != old.GetResourceVersion()), nil
}

// applyEndpoints replaces a selectorless service's endpoints unless they
// are already the ones declared.
func (c *Console) applyEndpoints(ctx context.Context, eps *manifest.Endpoints, dryRun bool) (string, error) {
	got, err := c.API.ListEndpoints(ctx, &svcregv1.ListEndpointsRequest{Namespace: eps.Namespace, Service: eps.Service})
	if err != nil {
		return "", err
	}
	if sameEndpoints(got.GetEndpoints(), eps.Endpoints) {
		return "unchanged", nil
	}
	verb := "configured"
	if len(got.GetEndpoints()) == 0 {
		verb = "created"
	}
	_, err = c.API.ReplaceEndpoints(ctx, &svcregv1.ReplaceEndpointsRequest{Namespace: eps.Namespace, Service: eps.Service, Endpoints: eps.Endpoints, ValidateOnly: dryRun})
	return verb, err
}

// sameEndpoints compares what a ReplaceEndpoints sets: each endpoint's
// own fields, by instance name, ignoring what the server fills in.
func sameEndpoints(stored, declared []*svcregv1.Endpoint) bool {
	if len(stored) != len(declared) {
		return false
	}
	norm := func(eps []*svcregv1.Endpoint) []*svcregv1.Endpoint {
		out := make([]*svcregv1.Endpoint, len(eps))
		for i, ep := range eps {
			ep = proto.Clone(ep).(*svcregv1.Endpoint)
			ep.Service, ep.Namespace, ep.ResourceVersion = "", "", 0
			if ep.Weight == nil {
				ep.Weight = proto.Uint32(1) // the server's default (docs/ipvs.md)
			}
			for _, p := range ep.Ports {
				if p.Protocol == svcregv1.Protocol_PROTOCOL_UNSPECIFIED {
					p.Protocol = svcregv1.Protocol_PROTOCOL_TCP
				}
				p.AppProtocol = ""
			}
			out[i] = ep
		}
		sortEndpoints(out)
		return out
	}
	a, b := norm(stored), norm(declared)
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
