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
	"github.com/svcreg/svcreg/internal/store"
)

func (r *registry) RenewInstanceLease(_ context.Context, req *svcregv1.RenewInstanceLeaseRequest) (*svcregv1.RenewInstanceLeaseResponse, error) {
	ns, err := objectRef(req.GetNamespace(), req.GetName(), "name")
	if err != nil {
		return nil, err
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
		if deadline, ttl, ok := r.leases.Renew(ns, req.GetName()); ok {
			resp.Found, resp.LeaseExpireTime, resp.TtlSeconds = true, timestamppb.New(deadline), int32(ttl.Seconds())
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
// command through the same write path as every other write.
func (r *registry) expireLeases(refs []*storev1.InstanceRef) error {
	cmd := r.command()
	cmd.Op = &storev1.Command_ExpireInstances{ExpireInstances: &storev1.ExpireInstances{Instances: refs}}
	_, err := r.apply.Apply(cmd)
	return err
}
