// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package reason names why a svcreg RPC failed, in a form programs can
// match: every error the registry returns carries a google.rpc.ErrorInfo
// with Domain and one of these reasons (AIP-193). Match reasons, not status
// codes: one code covers several situations (UNAVAILABLE is a server that
// is not ready, a lost leader or a shutdown), and each wants its own
// handling.
package reason

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of svcreg's errors.
const Domain = "svcreg.io"

// The reasons, with the status code each comes with.
const (
	// FieldInvalid: a field failed validation (INVALID_ARGUMENT, REST 422;
	// google.rpc.BadRequest names the fields).
	FieldInvalid = "FIELD_INVALID"
	// NotFound: the object does not exist (NOT_FOUND).
	NotFound = "NOT_FOUND"
	// AlreadyExists: the name is taken (ALREADY_EXISTS, REST 409).
	AlreadyExists = "ALREADY_EXISTS"
	// EtagMismatch: the object changed since the etag or resource version
	// sent (ABORTED, REST 409): read it again and retry.
	EtagMismatch = "ETAG_MISMATCH"
	// RangeFull: no cluster IP or node port is left (RESOURCE_EXHAUSTED).
	RangeFull = "RANGE_FULL"
	// FailedPrecondition: the write is not possible in the object's state
	// (FAILED_PRECONDITION).
	FailedPrecondition = "FAILED_PRECONDITION"
	// InvalidSnapshot: a snapshot to restore is not one, is damaged, or
	// holds objects a write would refuse (INVALID_ARGUMENT).
	InvalidSnapshot = "INVALID_SNAPSHOT"
	// LimitExceeded: a request or a connection went past a server limit
	// (RESOURCE_EXHAUSTED); the message names the limit.
	LimitExceeded = "LIMIT_EXCEEDED"
	// ResourceVersionTooOld: a watch asked for a revision older than the
	// server's history (OUT_OF_RANGE; Kubernetes' 410 Gone): list again,
	// then watch from the list's revision.
	ResourceVersionTooOld = "RESOURCE_VERSION_TOO_OLD"
	// ResourceVersionAhead: a watch asked for a revision this server has
	// not reached, and it did not catch up in time (INVALID_ARGUMENT). After
	// a registry lost its state it means: list again.
	ResourceVersionAhead = "RESOURCE_VERSION_AHEAD"
	// WatcherTooSlow: the watcher fell too far behind and was cut off
	// (RESOURCE_EXHAUSTED): resume from the last revision received.
	WatcherTooSlow = "WATCHER_TOO_SLOW"
	// NotReady: the server has not caught up with the cluster's state since
	// it started (UNAVAILABLE, REST 503): retry, here or on another server.
	NotReady = "NOT_READY"
	// NotLeader: the request must run on the Raft leader, and this server
	// stopped leading while it ran (UNAVAILABLE): retry.
	NotLeader = "NOT_LEADER"
	// NoLeader: the cluster has no leader within the hold timeout: no
	// quorum, or an election that takes long (UNAVAILABLE).
	NoLeader = "NO_LEADER"
	// ClusterChange: a membership change or leadership transfer did not
	// complete (another in progress, a server that did not catch up in
	// time) (UNAVAILABLE): retry.
	ClusterChange = "CLUSTER_CHANGE_FAILED"
	// Behind: this server did not reach the requested min_revision in time
	// (UNAVAILABLE): retry, or read from the leader.
	Behind = "BEHIND"
	// ShuttingDown: the server is stopping (UNAVAILABLE): resume elsewhere.
	ShuttingDown = "SHUTTING_DOWN"
	// DiskFull: the server cannot append to its log for lack of disk space
	// (RESOURCE_EXHAUSTED): writes resume once space is freed.
	DiskFull = "DISK_FULL"
	// NodeIDInUse: a server asked to join the cluster under the node ID of
	// a live member (ALREADY_EXISTS): give it another --node-id.
	NodeIDInUse = "NODE_ID_IN_USE"
	// Unauthenticated: no credential, or one the registry does not know
	// (revoked, expired, never created). UNAUTHENTICATED, REST 401.
	Unauthenticated = "UNAUTHENTICATED"
	// PermissionDenied: the credential's roles do not allow the request.
	// PERMISSION_DENIED, REST 403.
	PermissionDenied = "PERMISSION_DENIED"
	// NotOwner: a registrar changing an instance another token
	// registered. PERMISSION_DENIED, REST 403.
	NotOwner = "NOT_OWNER"
	// Internal: a bug in svcreg (INTERNAL); the server logged it.
	Internal = "INTERNAL"
)

// Of returns the reason of an error from svcreg's API, or "" when it has
// none (a transport error, or an error from elsewhere).
func Of(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info.GetReason()
		}
	}
	return ""
}
