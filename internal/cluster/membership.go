// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/svcreg/svcreg/gen/svcreg/cluster/v1"
	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
)

// Membership follows Consul's: a cluster forms when BootstrapExpect
// servers that have never been in one find each other through Join; a
// server that joins later is added as a non-voter and promoted by the
// leader's autopilot (hashicorp/raft-autopilot) only once it has caught up
// and stayed healthy for a stabilization time, so a join that never
// becomes a working server (a typo, a stranger) never counts toward
// quorum. Autopilot also removes servers that stay unreachable, never
// going below BootstrapExpect voters.
type membership struct {
	n  *Node
	ap *autopilot.Autopilot

	mu      sync.Mutex
	contact map[raft.ServerID]time.Time // last successful stats fetch
	seen    map[raft.ServerID]time.Time // when first known
}

// failAfter is how long a server may be unreachable before autopilot
// counts it failed (Consul learns it from gossip; we from the peer port).
func (m *membership) failAfter() time.Duration { return m.n.cfg.scale(10 * time.Second) }

func newMembership(n *Node) *membership {
	m := &membership{n: n, contact: map[raft.ServerID]time.Time{}, seen: map[raft.ServerID]time.Time{}}
	m.ap = autopilot.New(n.raft, m,
		autopilot.WithLogger(libraryLogger(n.log, "autopilot", hclog.Warn)),
		autopilot.WithUpdateInterval(n.cfg.scale(2*time.Second)),
		autopilot.WithReconcileInterval(n.cfg.scale(5*time.Second)))
	return m
}

// leading starts autopilot on the leader and stops it elsewhere.
func (m *membership) leading(leader bool) {
	if leader {
		m.ap.Start(context.Background())
		return
	}
	<-m.ap.Stop()
}

// AutopilotConfig implements autopilot.ApplicationIntegration.
func (m *membership) AutopilotConfig() *autopilot.Config {
	return &autopilot.Config{
		CleanupDeadServers:      true,
		LastContactThreshold:    m.n.cfg.scale(time.Second),
		MaxTrailingLogs:         250,
		MinQuorum:               uint(m.n.cfg.BootstrapExpect),
		ServerStabilizationTime: m.n.cfg.scale(10 * time.Second),
	}
}

// NotifyState implements autopilot.ApplicationIntegration.
func (m *membership) NotifyState(*autopilot.State) {}

// KnownServers implements autopilot.ApplicationIntegration: every server
// in the configuration, alive while the leader reaches it (and for
// failAfter after it was first seen, while it starts).
func (m *membership) KnownServers() map[raft.ServerID]*autopilot.Server {
	servers, err := m.n.Servers()
	if err != nil {
		return nil
	}
	leader := m.n.Leader()
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[raft.ServerID]*autopilot.Server, len(servers))
	for _, s := range servers {
		if _, ok := m.seen[s.ID]; !ok {
			m.seen[s.ID] = now
		}
		status := autopilot.NodeFailed
		if s.ID == raft.ServerID(m.n.cfg.NodeID) || now.Sub(m.contact[s.ID]) < m.failAfter() || now.Sub(m.seen[s.ID]) < m.failAfter() {
			status = autopilot.NodeAlive
		}
		out[s.ID] = &autopilot.Server{ID: s.ID, Name: string(s.ID), Address: s.Address, NodeStatus: status,
			RaftVersion: raft.ProtocolVersionMax, IsLeader: string(s.ID) == leader}
	}
	return out
}

// FetchServerStats implements autopilot.ApplicationIntegration.
func (m *membership) FetchServerStats(ctx context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	out := make(map[raft.ServerID]*autopilot.ServerStats, len(servers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, s := range servers {
		if string(id) == m.n.cfg.NodeID {
			mu.Lock()
			out[id] = &autopilot.ServerStats{LastIndex: m.n.raft.LastIndex(), LastTerm: m.n.lastTerm()}
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			info, err := m.n.nodeInfo(ctx, m.n.peerAddrOf(string(id), string(s.Address)))
			if err != nil {
				return
			}
			mu.Lock()
			out[id] = &autopilot.ServerStats{LastContact: time.Duration(info.GetLastContactMs()) * time.Millisecond,
				LastTerm: info.GetLastTerm(), LastIndex: info.GetLastIndex()}
			mu.Unlock()
			m.mu.Lock()
			m.contact[id] = time.Now()
			m.mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// RemoveFailedServer implements autopilot.ApplicationIntegration.
func (m *membership) RemoveFailedServer(s *autopilot.Server) {
	m.n.log.Warn("autopilot: removing a server that stayed unreachable", "id", s.ID, "address", s.Address)
	if err := m.n.RemoveServer(string(s.ID)); err != nil {
		m.n.log.Warn("removing a failed server", "id", s.ID, "err", err)
	}
}

func (n *Node) lastTerm() uint64 {
	term, _ := strconv.ParseUint(n.raft.Stats()["last_log_term"], 10, 64)
	return term
}

// run forms or joins the cluster, then keeps this server's address
// record current and asks to join again whenever the cluster seems to
// have dropped it.
func (m *membership) run() {
	n := m.n
	m.form()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		n.announce()
		if len(n.cfg.Join) > 0 && !n.IsLeader() && n.Bootstrapped() && time.Since(n.raft.LastContact()) > m.failAfter() {
			m.join() // removed while away (autopilot): ask back in
		}
	}
}

// announce records this server's addresses in the store, so that the
// others can forward to it once it leads and operators see it. It
// compares with a caught-up store only: a restarted server replaying its
// log sees an older record and would write one more, identical, entry.
func (n *Node) announce() {
	if n.CheckCaughtUp() != nil {
		return
	}
	want := &storev1.SetNode{Id: n.cfg.NodeID, GrpcAddress: n.cfg.GRPCAddr, RaftAddress: n.RaftAddr(), PeerAddress: n.PeerAddr()}
	if cur, err := n.store.Read().Node(n.cfg.NodeID); err == nil && cur.GetGrpcAddress() == want.GrpcAddress &&
		cur.GetRaftAddress() == want.RaftAddress && cur.GetPeerAddress() == want.PeerAddress {
		return
	}
	if n.Leader() == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.HoldTimeout)
	defer cancel()
	if _, err := n.Apply(ctx, &storev1.Command{Op: &storev1.Command_SetNode{SetNode: want}}); err != nil {
		n.log.Debug("announcing this server's addresses", "err", err)
	}
}

// form bootstraps or joins the cluster when this server has no state of
// its own: it asks the Join servers until it finds a cluster to join, or
// enough unbootstrapped servers (BootstrapExpect, itself included) to
// bootstrap one with; every server computes the same configuration.
func (m *membership) form() {
	n := m.n
	if n.Bootstrapped() && !n.cfg.Rejoin || n.cfg.BootstrapExpect == 1 && len(n.cfg.Join) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-n.stop:
				return
			case <-time.After(time.Second):
			}
		}
		if n.Bootstrapped() && !n.cfg.Rejoin {
			return // someone added us
		}
		joined, servers := m.joinOrCount()
		if joined {
			return
		}
		if n.cfg.Rejoin {
			continue // only an existing cluster can take a rejoining server back
		}
		if len(servers) >= n.cfg.BootstrapExpect {
			conf := raft.Configuration{Servers: servers}
			err := n.raft.BootstrapCluster(conf).Error()
			if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				n.log.Error("bootstrap failed", "err", err)
				continue
			}
			n.log.Info("bootstrapped the cluster", "servers", len(conf.Servers))
			return
		}
		if attempt%10 == 0 {
			n.log.Info("waiting for servers to form a cluster", "have", len(servers), "expect", n.cfg.BootstrapExpect)
		}
	}
}

// joinOrCount asks each Join server: it joins the first that is in a
// cluster, else returns the unbootstrapped servers it found (itself
// included), sorted by ID.
func (m *membership) joinOrCount() (bool, []raft.Server) {
	n := m.n
	found := map[string]raft.Server{n.cfg.NodeID: {ID: raft.ServerID(n.cfg.NodeID), Address: n.transport.LocalAddr()}}
	for _, addr := range n.cfg.Join {
		if addr == n.PeerAddr() {
			continue
		}
		info, err := n.nodeInfo(context.Background(), addr)
		if err != nil {
			continue
		}
		if info.GetBootstrapped() {
			if m.joinVia(addr) {
				return true, nil
			}
			continue
		}
		found[info.GetId()] = raft.Server{ID: raft.ServerID(info.GetId()), Address: raft.ServerAddress(info.GetRaftAddress())}
	}
	servers := make([]raft.Server, 0, len(found))
	for _, s := range found {
		servers = append(servers, s)
	}
	slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return false, servers
}

// join asks the Join servers, in turn, to add this server.
func (m *membership) join() {
	for _, addr := range m.n.cfg.Join {
		if addr != m.n.PeerAddr() && m.joinVia(addr) {
			return
		}
	}
}

func (m *membership) joinVia(addr string) bool {
	n := m.n
	conn, err := n.PeerConn(addr)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.HoldTimeout)
	defer cancel()
	_, err = clusterv1.NewPeerServiceClient(conn).Join(ctx, &clusterv1.JoinRequest{
		Id: n.cfg.NodeID, PeerAddress: n.RaftAddr(), GrpcAddress: n.cfg.GRPCAddr, Empty: n.raft.LastIndex() == 0})
	if status.Code(err) == codes.AlreadyExists {
		n.fail(fmt.Errorf("joining the cluster through %s: %w", addr, err))
		return false
	}
	if err != nil {
		n.log.Warn("join failed", "via", addr, "err", err)
		return false
	}
	n.log.Info("asked to join the cluster", "via", addr)
	n.cfg.Rejoin = false
	return true
}

// nodeInfo asks a server about itself over its peer port.
func (n *Node) nodeInfo(ctx context.Context, addr string) (*clusterv1.GetNodeInfoResponse, error) {
	conn, err := n.PeerConn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return clusterv1.NewPeerServiceClient(conn).GetNodeInfo(ctx, &clusterv1.GetNodeInfoRequest{})
}

// Join adds a server as a non-voter (leader only); autopilot promotes it.
// A server already in the configuration at that address is left as it is;
// one at another address, or one rejoining with new data, is replaced.
func (n *Node) join(req *clusterv1.JoinRequest) error {
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	id, addr := raft.ServerID(req.GetId()), raft.ServerAddress(req.GetPeerAddress())
	for _, s := range servers {
		if s.ID == id && s.Address == addr && !req.GetEmpty() {
			return nil // a member already (asking again after a pause)
		}
		if s.ID == id && s.Address != addr && n.alive(string(s.ID), string(s.Address)) {
			// Two processes with one --node-id: replacing the live one would
			// make the two take turns at being removed, forever.
			n.log.Warn("refused a join: another server of the cluster, alive, has that node ID", "id", id, "asked_from", addr, "member_at", s.Address)
			return fmt.Errorf("%w: %q is the node ID of a live server of the cluster at %s; give this server another --node-id", ErrNodeIDInUse, id, s.Address)
		}
		if s.ID == id {
			if err := n.RemoveServer(req.GetId()); err != nil {
				return err
			}
		}
	}
	n.log.Info("adding a server as a non-voter; autopilot promotes it once it is caught up and stable", "id", id, "address", addr)
	return raftError(n.raft.AddNonvoter(id, addr, 0, n.cfg.HoldTimeout).Error())
}

// alive reports whether the server with that ID answers at its address
// (and says it is that ID).
func (n *Node) alive(id, addr string) bool {
	if id == n.cfg.NodeID {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := n.nodeInfo(ctx, n.peerAddrOf(id, addr))
	return err == nil && info.GetId() == id
}

// RemoveServer removes a server (leader only).
func (n *Node) RemoveServer(id string) error {
	return raftError(n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.HoldTimeout).Error())
}

// TransferLeadership hands leadership to id, or to any server when empty.
func (n *Node) TransferLeadership(id string) error {
	if id == "" {
		return raftError(n.raft.LeadershipTransfer().Error())
	}
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if string(s.ID) == id {
			return raftError(n.raft.LeadershipTransferToServer(s.ID, s.Address).Error())
		}
	}
	return fmt.Errorf("%w: no server %q in the cluster", ErrUnknownServer, id)
}
