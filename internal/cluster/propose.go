// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/svcreg/svcreg/gen/svcreg/cluster/v1"
	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/reason"
)

// Apply proposes a command from any server: it is checked (store.Prepare),
// then the leader checks it against its state (store.Precheck) and appends
// it; a follower forwards it to the leader over the peer port, where it is
// checked again. While there is no leader it retries (WithLeader) until
// ctx's deadline or the hold timeout, whichever comes first, then fails
// with ErrNoLeader; a cancelled ctx returns at once. Every command gets a
// request id, so retrying after an unknown outcome (a leader lost between
// commit and answer, a caller that gave up) never applies it twice. What
// fails a check never becomes a log entry.
func (n *Node) Apply(ctx context.Context, cmd *storev1.Command) (*store.Result, error) {
	if err := store.Prepare(cmd, n.cfg.Limits); err != nil {
		return nil, err
	}
	if cmd.GetRequestId() == "" {
		cmd.RequestId = newRequestID()
	}
	return WithLeader(ctx, n, func(ctx context.Context) (*store.Result, error, bool) { return n.applyOnce(ctx, cmd) })
}

// applyOnce tries once; retry says whether another try may succeed.
func (n *Node) applyOnce(ctx context.Context, cmd *storev1.Command) (*store.Result, error, bool) {
	if n.IsLeader() {
		res, err := n.ApplyLocal(ctx, cmd)
		return res, err, errors.Is(err, ErrNotLeader)
	}
	conn, err := n.LeaderConn()
	if err != nil {
		return nil, err, true
	}
	resp, err := clusterv1.NewPeerServiceClient(conn).ApplyCommand(ctx, &clusterv1.ApplyCommandRequest{Command: cmd})
	if err != nil {
		// The leader moved or is unreachable: a retry is safe (request id).
		switch r := reason.Of(err); {
		case r == reason.NotLeader || r == reason.NoLeader:
			return nil, err, true
		case r != "":
			return nil, err, false
		}
		if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded || c == codes.Canceled && ctx.Err() == nil {
			return nil, err, true
		}
		return nil, err, false
	}
	return &store.Result{Revision: resp.GetRevision(), Service: resp.GetService(), Instance: resp.GetInstance(), Endpoints: resp.GetEndpoints(), Token: resp.GetToken()}, nil, false
}

// ApplyLocal checks a prepared command against the state and appends it
// through this server's Raft, which must be the leader (lease expiries,
// forwarded writes). A ctx that ends first returns at once with its
// error: the command may still be applied (its request id makes a retry
// safe).
func (n *Node) ApplyLocal(ctx context.Context, cmd *storev1.Command) (*store.Result, error) {
	if cmd.GetRequestId() == "" {
		cmd.RequestId = newRequestID()
	}
	if n.diskFull.Load() {
		return nil, fmt.Errorf("%w: the data dir %s has less than %d MiB free; writes resume once space is freed", ErrDiskFull, n.cfg.DataDir, n.cfg.MinFreeDisk>>20)
	}
	// A new leader's store may lack entries earlier leaders committed (and
	// acknowledged) until its barrier has applied them: a precheck against
	// it could refuse a write that is valid ("not found" for an object that
	// exists). Until then the write waits, as for a leader.
	n.mu.Lock()
	settled := n.barrierDone
	n.mu.Unlock()
	if !settled {
		return nil, fmt.Errorf("%w: it has not yet applied what earlier leaders committed", ErrNotLeader)
	}
	if store.ValidateOnly(cmd) {
		// A dry run (AIP-163) runs on the leader's state as the write
		// would, and is never proposed; a refusal is confirmed as a
		// precheck's is (below).
		res, err := n.store.DryRun(cmd)
		if err != nil {
			if verr := n.VerifyLeader(); verr != nil {
				return nil, verr
			}
		}
		return res, err
	}
	if err := n.store.Precheck(cmd); err != nil {
		// A refusal read from this server's state answers for the present
		// only if this server still leads: a leader cut off and deposed
		// without knowing it yet holds a stale state (a delete the new
		// leader committed). Confirm with a quorum, after the read, before
		// answering; else the client retries with the leader.
		if verr := n.VerifyLeader(); verr != nil {
			return nil, verr
		}
		return nil, err
	}
	b, err := encodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	if len(b) > n.cfg.MaxEntryBytes {
		return nil, fmt.Errorf("%w: the write is %d bytes, and a Raft entry may be at most %d", ErrTooLarge, len(b), n.cfg.MaxEntryBytes)
	}
	timeout := n.cfg.HoldTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	// The restore lock is held until the command is applied, even when the
	// caller stops waiting: a restore must see it applied.
	n.restoring.RLock()
	f := n.raft.Apply(b, timeout)
	errc := make(chan error, 1)
	go func() {
		errc <- f.Error()
		n.restoring.RUnlock()
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (the write was proposed and may still be applied: retrying with its request id is safe)", ctx.Err())
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return nil, err
	}
	resp, _ := f.Response().(applyResponse)
	return resp.res, resp.err
}

// VerifyLeader confirms, for a linearizable read, that this server still
// leads (a quorum answered) and has applied everything committed before
// its election.
func (n *Node) VerifyLeader() error {
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: leadership could not be confirmed: %v", ErrNotLeader, err)
	}
	n.mu.Lock()
	done := n.barrierDone
	n.mu.Unlock()
	if !done {
		return fmt.Errorf("%w: it has not yet applied what earlier leaders committed", ErrNotLeader)
	}
	return nil
}

// LeaderConn is a connection to the leader's peer gRPC surface (for
// forwarding writes, reads and lease renewals), or ErrNoLeader.
func (n *Node) LeaderConn() (*grpc.ClientConn, error) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return nil, fmt.Errorf("%w is known", ErrNoLeader)
	}
	if peer := n.peerAddrOf(string(id), string(addr)); peer != "" {
		return n.PeerConn(peer)
	}
	return nil, fmt.Errorf("%w: the leader's (%s) peer address is not known yet", ErrNoLeader, id)
}

// peerAddrOf is a server's peer address: its recorded one, else its Raft
// address when Raft runs over the peer port.
func (n *Node) peerAddrOf(id, raftAddr string) string {
	if id == n.cfg.NodeID {
		return n.PeerAddr()
	}
	if rec, err := n.store.Read().Node(id); err == nil && rec.GetPeerAddress() != "" {
		return rec.GetPeerAddress()
	}
	if n.cfg.Transport == nil {
		return raftAddr
	}
	return ""
}

// PeerConn is a (shared) connection to another server's peer port.
func (n *Node) PeerConn(addr string) (*grpc.ClientConn, error) {
	if n.peer == nil {
		return nil, fmt.Errorf("%w: this server runs alone, without a peer port", ErrNoLeader)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.conns[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return n.peer.dial(ctx, addr, protoGRPC) }))
	if err != nil {
		return nil, err
	}
	n.conns[addr] = c
	return c, nil
}

func newRequestID() string {
	var b [16]byte
	crand.Read(b[:])
	return fmt.Sprintf("%x", b)
}
