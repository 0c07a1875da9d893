// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	clusterv1 "github.com/svcreg/svcreg/gen/svcreg/cluster/v1"
	"github.com/svcreg/svcreg/internal/store"
)

// PeerService is this server's side of the peer protocol, served on the
// peer port only. Errors are domain errors; the server's interceptors
// convert them, as on the client port.
func (n *Node) PeerService() clusterv1.PeerServiceServer { return peerService{n: n} }

type peerService struct {
	clusterv1.UnimplementedPeerServiceServer
	n *Node
}

// ApplyCommand checks a forwarded command again, as if it had arrived
// here, and proposes it; it never forwards again.
func (p peerService) ApplyCommand(ctx context.Context, req *clusterv1.ApplyCommandRequest) (*clusterv1.ApplyCommandResponse, error) {
	cmd := req.GetCommand()
	if cmd == nil {
		return nil, store.Required("command")
	}
	if !p.n.IsLeader() {
		return nil, ErrNotLeader
	}
	if err := store.Prepare(cmd, p.n.cfg.Limits); err != nil {
		return nil, err
	}
	res, err := p.n.ApplyLocal(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return &clusterv1.ApplyCommandResponse{Revision: res.Revision, Service: res.Service, Instance: res.Instance, Endpoints: res.Endpoints, Token: res.Token}, nil
}

// Join adds a server through the leader.
func (p peerService) Join(ctx context.Context, req *clusterv1.JoinRequest) (*clusterv1.JoinResponse, error) {
	var errs []string
	if req.GetId() == "" {
		errs = append(errs, "id")
	}
	if req.GetPeerAddress() == "" {
		errs = append(errs, "peer_address")
	}
	if len(errs) > 0 {
		return nil, store.Required(errs...)
	}
	if !p.n.IsLeader() {
		conn, err := p.n.LeaderConn()
		if err != nil {
			return nil, err
		}
		return clusterv1.NewPeerServiceClient(conn).Join(ctx, req)
	}
	return &clusterv1.JoinResponse{}, p.n.join(req)
}

// GetNodeInfo describes this server.
func (p peerService) GetNodeInfo(context.Context, *clusterv1.GetNodeInfoRequest) (*clusterv1.GetNodeInfoResponse, error) {
	return p.n.Info(), nil
}

// Info describes this server as GetNodeInfo does.
func (n *Node) Info() *clusterv1.GetNodeInfoResponse {
	info := &clusterv1.GetNodeInfoResponse{
		Id: n.cfg.NodeID, RaftAddress: n.RaftAddr(), PeerAddress: n.PeerAddr(), GrpcAddress: n.cfg.GRPCAddr,
		State: n.State(), Bootstrapped: n.Bootstrapped(), BootstrapExpect: int32(n.cfg.BootstrapExpect),
		AppliedIndex: n.raft.AppliedIndex(), LastIndex: n.raft.LastIndex(), LastTerm: n.lastTerm(),
		Revision: n.store.Revision(), CaughtUp: n.CaughtUp(), DiskFull: n.diskFull.Load(),
	}
	if !n.IsLeader() {
		if last := n.raft.LastContact(); !last.IsZero() {
			info.LastContactMs = time.Since(last).Milliseconds()
		} else {
			info.LastContactMs = -1
		}
	}
	return info
}

// PeerStatus is a server of the configuration as it describes itself (Info
// is nil when it did not answer).
type PeerStatus struct {
	Server raft.Server
	Info   *clusterv1.GetNodeInfoResponse
}

// Peers describes every server of the configuration, asking each over the
// peer port at once.
func (n *Node) Peers(ctx context.Context) ([]PeerStatus, error) {
	servers, err := n.Servers()
	if err != nil {
		return nil, err
	}
	out := make([]PeerStatus, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		out[i].Server = s
		if string(s.ID) == n.cfg.NodeID {
			out[i].Info = n.Info()
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			out[i].Info, _ = n.nodeInfo(ctx, n.peerAddrOf(string(s.ID), string(s.Address)))
		})
	}
	wg.Wait()
	return out, nil
}
