package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/store"
)

func (r *registry) RenewInstanceLease(ctx context.Context, req *svcregv1.RenewInstanceLeaseRequest) (*svcregv1.RenewInstanceLeaseResponse, error) {
	ns, err := objectRef(req.GetNamespace(), req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	if !r.node.IsLeader() {
		// Deadlines live in the leader's memory (RAFT.md): renewals go there.
		if forwarded(ctx) {
			return nil, status.Error(codes.Unavailable, "not the raft leader: retry the renewal")
		}
		return forward(ctx, r, func(c svcregv1.RegistryServiceClient, ctx context.Context) (*svcregv1.RenewInstanceLeaseResponse, error) {
			return c.RenewInstanceLease(ctx, req)
		})
	}
	deadline, ttl, ok := r.leases.Renew(ns, req.GetName())
	if !ok {
		return nil, r.noLease(ns, req.GetName())
	}
	return &svcregv1.RenewInstanceLeaseResponse{LeaseExpireTime: timestamppb.New(deadline), TtlSeconds: int32(ttl.Seconds())}, nil
}

// noLease explains a failed renewal: the instance is gone (register again)
// or never had a lease.
func (r *registry) noLease(namespace, name string) error {
	inst, _, err := r.store.Instance(namespace, name)
	if err != nil {
		return err
	}
	if inst.GetTtlSeconds() == 0 {
		return &store.Error{Kind: store.ErrFailedPrecondition, Message: fmt.Sprintf("instance %q has no lease: its ttl_seconds is 0", name)}
	}
	return &store.Error{Kind: store.ErrNotFound, Message: fmt.Sprintf("instance %q has no live lease", name)}
}

func (r *registry) KeepAlive(stream grpc.BidiStreamingServer[svcregv1.KeepAliveRequest, svcregv1.KeepAliveResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ns := req.GetNamespace()
		if ns == "" {
			ns = store.DefaultNamespace
		}
		resp := &svcregv1.KeepAliveResponse{Namespace: ns, Name: req.GetName()}
		if r.node.IsLeader() {
			if deadline, ttl, ok := r.leases.Renew(ns, req.GetName()); ok {
				resp.Found, resp.LeaseExpireTime, resp.TtlSeconds = true, timestamppb.New(deadline), int32(ttl.Seconds())
			}
		} else {
			renewed, err := forward(stream.Context(), r, func(c svcregv1.RegistryServiceClient, ctx context.Context) (*svcregv1.RenewInstanceLeaseResponse, error) {
				return c.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: ns, Name: req.GetName()})
			})
			switch status.Code(err) {
			case codes.OK:
				resp.Found, resp.LeaseExpireTime, resp.TtlSeconds = true, renewed.GetLeaseExpireTime(), renewed.GetTtlSeconds()
			case codes.NotFound, codes.FailedPrecondition:
			default:
				return err // no leader: the client reconnects and retries
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// withLease shows an instance with its lease expiry (leases live in memory,
// not in the stored object).
func (r *registry) withLease(inst *svcregv1.Instance) *svcregv1.Instance {
	if inst == nil || inst.GetTtlSeconds() == 0 {
		return inst
	}
	deadline, ok := r.leases.Deadline(inst.GetNamespace(), inst.GetName())
	if !ok {
		return inst
	}
	inst = proto.Clone(inst).(*svcregv1.Instance)
	inst.LeaseExpireTime = timestamppb.New(deadline)
	return inst
}

// expireLeases is the lease manager's way to delete lapsed instances: a
// Raft command, proposed only by a server that has just confirmed it is
// the leader (a deposed leader must never expire what the new one renews).
func (r *registry) expireLeases(refs []*storev1.InstanceRef) error {
	if err := r.node.VerifyLeader(); err != nil {
		return err
	}
	cmd := r.command()
	cmd.Op = &storev1.Command_ExpireInstances{ExpireInstances: &storev1.ExpireInstances{Instances: refs}}
	_, err := r.node.ApplyLocal(cmd)
	return err
}
