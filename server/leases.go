// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/lease"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/reason"
)

// leases serves lease renewals. Deadlines live in the leader's memory
// (docs/durability.md, "Leases"): a renewal runs on the leader, and a
// follower passes it on, riding through leader changes as writes do.
type leases struct {
	router  *router
	manager *lease.Manager
	writer  *writer
}

func (l *leases) RenewInstanceLease(ctx context.Context, req *svcregv1.RenewInstanceLeaseRequest) (*svcregv1.RenewInstanceLeaseResponse, error) {
	ns, err := objectRef(store.KindInstance, req.GetNamespace(), req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	return l.renew(ctx, ns, req.GetName())
}

func (l *leases) renew(ctx context.Context, ns, name string) (*svcregv1.RenewInstanceLeaseResponse, error) {
	return onLeader(ctx, l.router,
		func() (*svcregv1.RenewInstanceLeaseResponse, error) {
			if err := l.owned(ctx, ns, name); err != nil {
				return nil, err
			}
			deadline, ttl, ok := l.manager.Renew(ns, name)
			if !ok {
				return nil, l.noLease(ns, name)
			}
			return &svcregv1.RenewInstanceLeaseResponse{LeaseExpireTime: timestamppb.New(deadline), TtlSeconds: int32(ttl.Seconds())}, nil
		},
		func(ctx context.Context, conn *grpc.ClientConn) (*svcregv1.RenewInstanceLeaseResponse, error) {
			return svcregv1grpc.NewRegistryServiceClient(conn).RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: ns, Name: name})
		})
}

// owned checks a registrar's renewal against the instance's owner, as the
// state machine checks its writes.
func (l *leases) owned(ctx context.Context, ns, name string) error {
	a := accessOf(ctx)
	if !a.grant.OwnOnly {
		return nil
	}
	inst, err := l.router.store.Read().Instance(ns, name)
	if err != nil {
		return nil // no such instance: Renew says so
	}
	return store.OwnedBy(inst, a.principal.Accessor, true)
}

// noLease explains a failed renewal: the instance is gone (register again)
// or never had a lease.
func (l *leases) noLease(namespace, name string) error {
	inst, err := l.router.store.Read().Instance(namespace, name)
	if err != nil {
		return err
	}
	if inst.GetTtlSeconds() == 0 {
		return &store.Error{Kind: store.ErrFailedPrecondition, Message: fmt.Sprintf("instance %q has no lease: its ttl_seconds is 0", name)}
	}
	return &store.Error{Kind: store.ErrNotFound, Message: fmt.Sprintf("instance %q has no live lease", name)}
}

func (l *leases) KeepAlive(stream grpc.BidiStreamingServer[svcregv1.KeepAliveRequest, svcregv1.KeepAliveResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ns, err := objectRef(store.KindInstance, req.GetNamespace(), req.GetName(), "name")
		if err != nil {
			return err
		}
		resp := &svcregv1.KeepAliveResponse{Namespace: ns, Name: req.GetName()}
		renewed, err := l.renew(stream.Context(), ns, req.GetName())
		switch why := reason.Of(apierror.ToStatus(err)); {
		case err == nil:
			resp.Found, resp.LeaseExpireTime, resp.TtlSeconds = true, renewed.GetLeaseExpireTime(), renewed.GetTtlSeconds()
		case why == reason.NotFound, why == reason.FailedPrecondition:
		default:
			return err // no leader within the hold: the client reconnects and retries
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// withLease shows an instance with its lease expiry (leases live in memory,
// not in the stored object).
func (l *leases) withLease(inst *svcregv1.Instance) *svcregv1.Instance {
	if inst == nil || inst.GetTtlSeconds() == 0 {
		return inst
	}
	deadline, ok := l.manager.Deadline(inst.GetNamespace(), inst.GetName())
	if !ok {
		return inst
	}
	inst = proto.Clone(inst).(*svcregv1.Instance)
	inst.LeaseExpireTime = timestamppb.New(deadline)
	if lapsed, ok := l.manager.Lapsed(inst.GetNamespace(), inst.GetName()); ok {
		inst.LeaseLapsedTime = timestamppb.New(lapsed)
	}
	return inst
}

// expire is the lease manager's way to delete lapsed instances: a Raft
// command, proposed only by a server that has just confirmed it is the
// leader (a deposed leader must never expire what the new one renews).
func (l *leases) expire(refs []*storev1.InstanceRef) error {
	if err := l.router.node.VerifyLeader(); err != nil {
		return err
	}
	cmd := &storev1.Command{Time: timestamppb.New(l.writer.clock.Now()),
		Op: &storev1.Command_ExpireInstances{ExpireInstances: &storev1.ExpireInstances{Instances: refs}}}
	ctx, cancel := context.WithTimeout(context.Background(), l.router.node.Hold())
	defer cancel()
	_, err := l.router.node.ApplyLocal(ctx, cmd)
	return err
}
