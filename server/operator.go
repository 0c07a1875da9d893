// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/internal/store"
)

// operator is the OperatorService: the cluster's servers, leadership and
// snapshots. What only the leader can do runs there (onLeader).
type operator struct {
	svcregv1grpc.UnimplementedOperatorServiceServer
	router *router
	node   *cluster.Node
	store  *store.Store
	// spool is where uploaded snapshots wait (the data dir, else the
	// temporary directory): on disk, never in memory.
	spool  string
	limits Limits
}

// ListPeers lists the configuration, each server as it describes itself.
func (o *operator) ListPeers(ctx context.Context, _ *svcregv1.ListPeersRequest) (*svcregv1.ListPeersResponse, error) {
	peers, err := o.node.Peers(ctx)
	if err != nil {
		return nil, err
	}
	resp := &svcregv1.ListPeersResponse{Leader: o.node.Leader()}
	for _, p := range peers {
		peer := &svcregv1.Peer{Id: string(p.Server.ID), RaftAddress: string(p.Server.Address), Voter: p.Server.Suffrage == 0, State: "unreachable"}
		if info := p.Info; info != nil {
			peer.GrpcAddress, peer.State, peer.AppliedIndex = info.GetGrpcAddress(), info.GetState(), info.GetAppliedIndex()
			peer.CaughtUp, peer.LastContactMs = info.GetCaughtUp(), info.GetLastContactMs()
		}
		resp.Peers = append(resp.Peers, peer)
	}
	slices.SortFunc(resp.Peers, func(a, b *svcregv1.Peer) int { return strings.Compare(a.Id, b.Id) })
	return resp, nil
}

func (o *operator) RemovePeer(ctx context.Context, req *svcregv1.RemovePeerRequest) (*svcregv1.RemovePeerResponse, error) {
	if req.GetId() == "" {
		return nil, store.Required("id")
	}
	return onLeader(ctx, o.router,
		func() (*svcregv1.RemovePeerResponse, error) {
			return &svcregv1.RemovePeerResponse{}, o.node.RemoveServer(req.GetId())
		},
		func(ctx context.Context, conn *grpc.ClientConn) (*svcregv1.RemovePeerResponse, error) {
			return svcregv1grpc.NewOperatorServiceClient(conn).RemovePeer(ctx, req)
		})
}

func (o *operator) TransferLeader(ctx context.Context, req *svcregv1.TransferLeaderRequest) (*svcregv1.TransferLeaderResponse, error) {
	return onLeader(ctx, o.router,
		func() (*svcregv1.TransferLeaderResponse, error) {
			if err := o.node.TransferLeadership(req.GetId()); err != nil {
				return nil, err
			}
			// The new leader is elected right after the transfer: wait for it.
			deadline := time.Now().Add(5 * time.Second)
			for (o.node.Leader() == "" || o.node.Leader() == o.node.ID()) && time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			return &svcregv1.TransferLeaderResponse{Leader: o.node.Leader()}, nil
		},
		func(ctx context.Context, conn *grpc.ClientConn) (*svcregv1.TransferLeaderResponse, error) {
			return svcregv1grpc.NewOperatorServiceClient(conn).TransferLeader(ctx, req)
		})
}

// SaveSnapshot streams this server's state.
func (o *operator) SaveSnapshot(_ *svcregv1.SaveSnapshotRequest, stream grpc.ServerStreamingServer[svcregv1.SaveSnapshotResponse]) error {
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&svcregv1.SaveSnapshotResponse{Data: b}) }}
	if _, err := o.store.Snapshot().WriteTo(w); err != nil {
		return err
	}
	return w.flush()
}

// RestoreSnapshot installs a snapshot through the leader's Raft. The
// first chunk must begin like a snapshot; the upload goes to a file, never
// to memory, up to the size limit.
func (o *operator) RestoreSnapshot(stream grpc.ClientStreamingServer[svcregv1.RestoreSnapshotRequest, svcregv1.RestoreSnapshotResponse]) error {
	f, err := o.receive(stream)
	if f != nil {
		defer os.Remove(f.Name())
		defer f.Close()
	}
	if err != nil {
		return err
	}
	resp, err := onLeader(stream.Context(), o.router,
		func() (*svcregv1.RestoreSnapshotResponse, error) {
			if err := o.node.Restore(f); err != nil {
				return nil, err
			}
			return &svcregv1.RestoreSnapshotResponse{Revision: o.store.Revision()}, nil
		},
		func(ctx context.Context, conn *grpc.ClientConn) (*svcregv1.RestoreSnapshotResponse, error) {
			return forwardSnapshot(ctx, conn, f)
		})
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

// receive spools an upload to a temporary file.
func (o *operator) receive(stream grpc.ClientStreamingServer[svcregv1.RestoreSnapshotRequest, svcregv1.RestoreSnapshotResponse]) (*os.File, error) {
	f, err := os.CreateTemp(o.spool, "svcreg-restore-*")
	if err != nil {
		return nil, err
	}
	var size int64
	for first := true; ; first = false {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, err
		}
		if first {
			if err := store.CheckHeader(req.GetData()); err != nil {
				return f, err
			}
		}
		if size += int64(len(req.GetData())); size > o.limits.SnapshotBytes {
			return f, fmt.Errorf("%w: the snapshot is larger than %d bytes (--max-snapshot-bytes)", apierror.ErrLimit, o.limits.SnapshotBytes)
		}
		if _, err := f.Write(req.GetData()); err != nil {
			return f, err
		}
	}
	if size == 0 {
		return f, store.CheckHeader(nil)
	}
	return f, nil
}

// forwardSnapshot streams a spooled snapshot to the leader.
func forwardSnapshot(ctx context.Context, conn *grpc.ClientConn, f *os.File) (*svcregv1.RestoreSnapshotResponse, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	up, err := svcregv1grpc.NewOperatorServiceClient(conn).RestoreSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	w := &chunkWriter{send: func(b []byte) error { return up.Send(&svcregv1.RestoreSnapshotRequest{Data: b}) }}
	if _, err := io.Copy(w, f); err != nil {
		return nil, err
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	return up.CloseAndRecv()
}

// chunkWriter sends a byte stream as 1 MiB messages.
type chunkWriter struct {
	buf  []byte
	send func([]byte) error
}

const chunkSize = 1 << 20

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(chunkSize-len(w.buf), len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == chunkSize {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = nil
	return err
}
