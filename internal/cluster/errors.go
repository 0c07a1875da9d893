package cluster

import "errors"

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
)
