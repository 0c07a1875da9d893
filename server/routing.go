// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/clock"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/reason"
)

// node is what the services need of the server's Raft node
// (*cluster.Node).
type node interface {
	ID() string
	IsLeader() bool
	CheckCaughtUp() error
	WaitCaughtUp(ctx context.Context) error
	VerifyLeader() error
	LeaderConn() (*grpc.ClientConn, error)
	Apply(context.Context, *storev1.Command) (*store.Result, error)
	ApplyLocal(context.Context, *storev1.Command) (*store.Result, error)
	cluster.Leaders
}

// Read consistency modes (the requests' consistency field).
const (
	consistencyDefault    = "default"
	consistencyConsistent = "consistent"
	consistencyStale      = "stale"
)

// maxCatchUp bounds how long a read waits for this server to reach a
// min_revision (or a watch's resume revision, or to catch up at start).
const maxCatchUp = 5 * time.Second

// router decides where a request runs: here, or on the leader, which
// followers reach over the peer port. Every read and every leader-only
// request goes through it, so the rules live once.
type router struct {
	node  node
	store *store.Store
}

// readHere returns true when this server may answer a read (and has caught
// up with minRev), false when the read must go to the leader (a follower
// asked for the default or consistent view).
func (r *router) readHere(ctx context.Context, consistency string, minRev int64) (bool, error) {
	switch consistency {
	case "", consistencyDefault, consistencyConsistent, consistencyStale:
	default:
		return false, validation.ErrorList{validation.NotSupported("consistency", consistency,
			[]string{consistencyDefault, consistencyConsistent, consistencyStale})}
	}
	if err := checkMinRevision(minRev); err != nil {
		return false, err
	}
	if consistency != consistencyStale {
		if err := r.node.CheckCaughtUp(); err != nil {
			return false, err
		}
	}
	if minRev > 0 {
		if err := r.caughtUpTo(ctx, minRev); err != nil {
			return false, err
		}
	}
	switch {
	case consistency == consistencyStale:
		return true, nil
	case !r.node.IsLeader() && forwarded(ctx):
		if consistency == consistencyConsistent {
			return false, r.node.VerifyLeader() // leadership moved meanwhile: the caller retries
		}
		return true, nil // leadership moved while forwarding: serve what we have
	case !r.node.IsLeader():
		return false, nil
	case consistency == consistencyConsistent:
		if err := r.node.VerifyLeader(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// forwardedKey marks a request a server passed to the leader: the
// receiver answers it itself rather than pass it on again (no loops when
// leadership moves meanwhile).
const forwardedKey = "svcreg-forwarded"

func forwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

// forwardCall is a RegistryService method as its client has it, so that
// method expressions (svcregv1grpc.RegistryServiceClient.GetService) fit.
type forwardCall[Req, Resp any] func(svcregv1grpc.RegistryServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error)

// read answers a read here or on the leader: every read handler is
// "validate, then read(ctx, router, req, how, its method, the local read)".
func read[Req, Resp any](ctx context.Context, r *router, req Req, consistency string, minRev int64, call forwardCall[Req, Resp], local func(*store.ReadTxn) (Resp, error)) (Resp, error) {
	here, err := r.readHere(ctx, consistency, minRev)
	if err != nil || here {
		if err != nil {
			var zero Resp
			return zero, err
		}
		return local(r.store.Read())
	}
	return forward(ctx, r, req, call)
}

// forward passes a request to the leader's RegistryService (peer port).
func forward[Req, Resp any](ctx context.Context, r *router, req Req, call forwardCall[Req, Resp]) (Resp, error) {
	conn, err := r.node.LeaderConn()
	if err != nil {
		var zero Resp
		return zero, err
	}
	return call(svcregv1grpc.NewRegistryServiceClient(conn), metadata.AppendToOutgoingContext(forwardedFor(ctx), forwardedKey, "1"), req)
}

// onLeader runs a leader-only request (a lease renewal, an operator
// action): here when this server leads, else on the leader through
// forwardTo; while there is no leader, or it moves, it retries as writes
// do (cluster.WithLeader: until the caller's deadline or the hold).
func onLeader[Resp any](ctx context.Context, r *router, here func() (Resp, error), forwardTo func(ctx context.Context, conn *grpc.ClientConn) (Resp, error)) (Resp, error) {
	return cluster.WithLeader(ctx, r.node, func(ctx context.Context) (Resp, error, bool) {
		var resp Resp
		var err error
		if r.node.IsLeader() {
			resp, err = here()
		} else if forwarded(ctx) {
			err = fmt.Errorf("%w: leadership moved while the request was forwarded", cluster.ErrNotLeader)
		} else if conn, cerr := r.node.LeaderConn(); cerr != nil {
			err = cerr
		} else {
			resp, err = forwardTo(metadata.AppendToOutgoingContext(forwardedFor(ctx), forwardedKey, "1"), conn)
		}
		return resp, err, retryable(err)
	})
}

// retryable: the request may succeed with another (or the next) leader.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if r := reason.Of(apierror.ToStatus(err)); r == reason.NotLeader || r == reason.NoLeader {
		return true
	}
	c := status.Code(err)
	return c == codes.Unavailable && reason.Of(err) == "" // a transport error: the leader went away
}

// writer proposes commands, stamped with the proposer's clock.
type writer struct {
	node  node
	clock clock.Clock
}

// apply proposes the command op fills in, stamped with the caller: an
// instance created records its token as owner, and a registrar's write
// may change only what it owns (the state machine checks, against the
// state the command applies to).
func (w *writer) apply(ctx context.Context, op func(*storev1.Command)) (*store.Result, error) {
	cmd := &storev1.Command{Time: timestamppb.New(w.clock.Now())}
	if a := accessOf(ctx); !a.principal.Everything {
		cmd.Owner, cmd.RequireOwner = a.principal.Accessor, a.grant.OwnOnly
	}
	op(cmd)
	return w.node.Apply(ctx, cmd)
}

// checkMinRevision checks a request's min_revision (reads and watches).
func checkMinRevision(minRev int64) error {
	if minRev < 0 {
		return validation.ErrorList{validation.Invalid("min_revision", minRev, "must not be negative")}
	}
	return nil
}

// caughtUpTo waits (bounded) until this server's store has reached rev.
func (r *router) caughtUpTo(ctx context.Context, rev int64) error {
	ctx, cancel := context.WithTimeout(ctx, maxCatchUp)
	defer cancel()
	if err := r.store.WaitRevision(ctx, rev); err != nil {
		return fmt.Errorf("%w: it has not reached revision %d (it is at %d)", apierror.ErrBehind, rev, r.store.Revision())
	}
	return nil
}
