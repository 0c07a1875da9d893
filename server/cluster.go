package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
)

// replication is the ReplicationService: followers hand writes to the
// leader here. It never forwards again: a server that is not the leader
// answers UNAVAILABLE and the follower retries with the new leader.
type replication struct {
	storev1.UnimplementedReplicationServiceServer
	node *cluster.Node
}

func (r *replication) ApplyCommand(_ context.Context, req *storev1.ApplyCommandRequest) (*storev1.ApplyCommandResponse, error) {
	if !r.node.IsLeader() {
		return nil, status.Error(codes.Unavailable, "not the raft leader")
	}
	res, err := r.node.ApplyLocal(req.GetCommand())
	if err != nil {
		return nil, err
	}
	return &storev1.ApplyCommandResponse{Revision: res.Revision, Service: res.Service, Instance: res.Instance, Endpoints: res.Endpoints}, nil
}

// operator is the OperatorService.
type operator struct {
	svcregv1.UnimplementedOperatorServiceServer
	node   *cluster.Node
	store  *store.Store
	expect int
}

func (o *operator) GetNodeInfo(context.Context, *svcregv1.GetNodeInfoRequest) (*svcregv1.GetNodeInfoResponse, error) {
	return &svcregv1.GetNodeInfoResponse{
		Node:            &svcregv1.Peer{Id: o.node.ID(), RaftAddress: o.node.RaftAddr(), GrpcAddress: o.self(), State: o.node.State(), Voter: true},
		Bootstrapped:    o.node.Bootstrapped(),
		BootstrapExpect: int32(o.expect),
		Revision:        o.store.Revision(),
	}, nil
}

func (o *operator) self() string {
	if n := o.store.Node(o.node.ID()); n != nil {
		return n.GetGrpcAddress()
	}
	return ""
}

// ListPeers lists the configuration, asking each server for its state.
func (o *operator) ListPeers(ctx context.Context, _ *svcregv1.ListPeersRequest) (*svcregv1.ListPeersResponse, error) {
	servers, err := o.node.Servers()
	if err != nil {
		return nil, err
	}
	leader := o.node.Leader()
	resp := &svcregv1.ListPeersResponse{}
	for _, s := range servers {
		p := &svcregv1.Peer{Id: string(s.ID), RaftAddress: string(s.Address), Voter: s.Suffrage == 0}
		if n := o.store.Node(p.Id); n != nil {
			p.GrpcAddress = n.GetGrpcAddress()
		}
		switch {
		case p.Id == leader:
			p.State = "leader"
		case p.Id == o.node.ID():
			p.State = o.node.State()
		default:
			p.State = o.peerState(ctx, p.GrpcAddress)
		}
		resp.Peers = append(resp.Peers, p)
	}
	slices.SortFunc(resp.Peers, func(a, b *svcregv1.Peer) int { return strings.Compare(a.Id, b.Id) })
	return resp, nil
}

func (o *operator) peerState(ctx context.Context, addr string) string {
	if addr == "" {
		return "unknown"
	}
	conn, err := o.conn(addr)
	if err != nil {
		return "unreachable"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	info, err := svcregv1.NewOperatorServiceClient(conn).GetNodeInfo(ctx, &svcregv1.GetNodeInfoRequest{})
	if err != nil {
		return "unreachable"
	}
	return info.GetNode().GetState()
}

func (o *operator) conn(addr string) (*grpc.ClientConn, error) { return o.node.ConnTo(addr) }

// leaderClient returns the leader's OperatorService, for requests only
// the leader can carry out.
func (o *operator) leaderClient() (svcregv1.OperatorServiceClient, error) {
	conn, err := o.node.LeaderConn()
	if err != nil {
		return nil, err
	}
	return svcregv1.NewOperatorServiceClient(conn), nil
}

func (o *operator) RemovePeer(ctx context.Context, req *svcregv1.RemovePeerRequest) (*svcregv1.RemovePeerResponse, error) {
	if req.GetId() == "" {
		return nil, validation.ErrorList{validation.Required("id", "")}
	}
	if !o.node.IsLeader() {
		c, err := o.leaderClient()
		if err != nil {
			return nil, err
		}
		return c.RemovePeer(ctx, req)
	}
	return &svcregv1.RemovePeerResponse{}, o.node.RemoveServer(req.GetId())
}

func (o *operator) TransferLeader(ctx context.Context, req *svcregv1.TransferLeaderRequest) (*svcregv1.TransferLeaderResponse, error) {
	if !o.node.IsLeader() {
		c, err := o.leaderClient()
		if err != nil {
			return nil, err
		}
		return c.TransferLeader(ctx, req)
	}
	if err := o.node.TransferLeadership(req.GetId()); err != nil {
		return nil, err
	}
	// The new leader is elected right after the transfer: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for (o.node.Leader() == "" || o.node.Leader() == o.node.ID()) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	return &svcregv1.TransferLeaderResponse{Leader: o.node.Leader()}, nil
}

// Join adds a server: the leader makes it a voter and records its
// addresses; a follower passes the request on.
func (o *operator) Join(ctx context.Context, req *svcregv1.JoinRequest) (*svcregv1.JoinResponse, error) {
	var errs validation.ErrorList
	if req.GetId() == "" {
		errs = append(errs, validation.Required("id", ""))
	}
	if req.GetRaftAddress() == "" {
		errs = append(errs, validation.Required("raft_address", ""))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if !o.node.IsLeader() {
		c, err := o.leaderClient()
		if err != nil {
			return nil, err
		}
		return c.Join(ctx, req)
	}
	if err := o.node.AddVoter(req.GetId(), req.GetRaftAddress()); err != nil {
		return nil, err
	}
	_, err := o.node.Apply(&storev1.Command{Op: &storev1.Command_SetNode{SetNode: &storev1.SetNode{
		Id: req.GetId(), GrpcAddress: req.GetGrpcAddress(), RaftAddress: req.GetRaftAddress()}}})
	return &svcregv1.JoinResponse{}, err
}

// SaveSnapshot streams this server's state.
func (o *operator) SaveSnapshot(_ *svcregv1.SaveSnapshotRequest, stream grpc.ServerStreamingServer[svcregv1.SaveSnapshotResponse]) error {
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&svcregv1.SaveSnapshotResponse{Data: b}) }}
	if _, err := o.store.Snapshot().WriteTo(w); err != nil {
		return err
	}
	return w.flush()
}

// RestoreSnapshot installs a snapshot through the leader's Raft.
func (o *operator) RestoreSnapshot(stream grpc.ClientStreamingServer[svcregv1.RestoreSnapshotRequest, svcregv1.RestoreSnapshotResponse]) error {
	var buf bytes.Buffer
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if buf.Len()+len(req.GetData()) > maxSnapshotBytes {
			return status.Errorf(codes.ResourceExhausted, "snapshot larger than %d bytes", maxSnapshotBytes)
		}
		buf.Write(req.GetData())
	}
	if !o.node.IsLeader() {
		c, err := o.leaderClient()
		if err != nil {
			return err
		}
		fwd, err := c.RestoreSnapshot(stream.Context())
		if err != nil {
			return err
		}
		if err := sendChunks(buf.Bytes(), func(b []byte) error { return fwd.Send(&svcregv1.RestoreSnapshotRequest{Data: b}) }); err != nil {
			return err
		}
		resp, err := fwd.CloseAndRecv()
		if err != nil {
			return err
		}
		return stream.SendAndClose(resp)
	}
	if err := o.node.Restore(buf.Bytes()); err != nil {
		return status.Errorf(codes.InvalidArgument, "restore: %v", err)
	}
	return stream.SendAndClose(&svcregv1.RestoreSnapshotResponse{Revision: o.store.Revision()})
}

const maxSnapshotBytes = 4 << 30

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

func sendChunks(b []byte, send func([]byte) error) error {
	for len(b) > 0 {
		n := min(chunkSize, len(b))
		if err := send(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Read consistency modes (the requests' consistency field).
const (
	consistencyDefault    = "default"
	consistencyConsistent = "consistent"
	consistencyStale      = "stale"
)

// maxCatchUp bounds how long a read waits for this server to reach a
// min_revision (or a watch's resume revision).
const maxCatchUp = 5 * time.Second

// readHere decides where a read runs. It returns true when this server
// may answer (and has caught up with minRev); false when the read must go
// to the leader (a follower asked for the default or consistent view).
func (r *registry) readHere(ctx context.Context, consistency string, minRev int64) (bool, error) {
	switch consistency {
	case "", consistencyDefault, consistencyConsistent, consistencyStale:
	default:
		return false, validation.ErrorList{validation.NotSupported("consistency", consistency,
			[]string{consistencyDefault, consistencyConsistent, consistencyStale})}
	}
	if minRev < 0 {
		return false, validation.ErrorList{validation.Invalid("min_revision", minRev, "must not be negative")}
	}
	if minRev > 0 {
		wctx, cancel := context.WithTimeout(ctx, maxCatchUp)
		defer cancel()
		if err := r.store.WaitRevision(wctx, minRev); err != nil {
			return false, status.Errorf(codes.Unavailable, "this server has not reached revision %d (it is at %d)", minRev, r.store.Revision())
		}
	}
	switch {
	case consistency == consistencyStale:
		return true, nil
	case !r.node.IsLeader() && forwarded(ctx):
		if consistency == consistencyConsistent {
			return false, status.Error(codes.Unavailable, "this server is no longer the raft leader: retry the consistent read")
		}
		return true, nil // leadership moved while forwarding: serve what we have
	case !r.node.IsLeader():
		return false, nil
	case consistency == consistencyConsistent:
		if err := r.node.VerifyLeader(); err != nil {
			return false, status.Error(codes.Unavailable, "leadership could not be confirmed: a consistent read is not possible here now")
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

// forward passes a request to the leader's RegistryService.
func forward[T any](ctx context.Context, r *registry, call func(svcregv1.RegistryServiceClient, context.Context) (T, error)) (T, error) {
	var zero T
	conn, err := r.node.LeaderConn()
	if err != nil {
		return zero, err
	}
	return call(svcregv1.NewRegistryServiceClient(conn), metadata.AppendToOutgoingContext(ctx, forwardedKey, "1"))
}
