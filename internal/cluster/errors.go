// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Domain errors of the cluster. The server converts them to gRPC status,
// each with its reason, in its one table (server/errors.go).
var (
	// ErrNotLeader: the request must run on the leader and this server
	// does not lead (any more): retry, with the leader.
	ErrNotLeader = errors.New("this server is not the raft leader")
	// ErrNoLeader: no leader answered within the hold timeout.
	ErrNoLeader = errors.New("no raft leader")
	// ErrNotReady: this server has not caught up with the cluster since it
	// started; it does not serve reads, watches or DNS yet.
	ErrNotReady = errors.New("this server has not caught up with the cluster yet")
	// ErrDiskFull: the data dir's file system has less free space than the
	// reserve; writes are refused until space is freed.
	ErrDiskFull = errors.New("disk full")
	// ErrTooLarge: a command is larger than a Raft entry may be.
	ErrTooLarge = errors.New("command too large")
	// ErrUnknownServer: no server with that ID is in the cluster.
	ErrUnknownServer = errors.New("unknown server")
	// ErrNodeIDInUse: a server asked to join under the node ID of another
	// server of the cluster that is alive (two processes started with the
	// same --node-id).
	ErrNodeIDInUse = errors.New("node ID in use")
	// ErrMembership: a membership change or leadership transfer did not
	// complete (a change in progress, a target that did not catch up in
	// time): retry.
	ErrMembership = errors.New("the cluster change did not complete")
)

// raftError turns what Raft answers a membership change or a restore with
// into the errors above: those are conditions of the cluster, not bugs.
func raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrNotVoter):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	return fmt.Errorf("%w: %v", ErrMembership, err)
}
