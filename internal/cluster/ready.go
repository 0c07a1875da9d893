// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	clusterv1 "github.com/svcreg/svcreg/gen/svcreg/cluster/v1"
)

// Ready means complete. A server that just started holds only what its
// data dir had, and Raft applies the rest as it learns what is committed:
// answering from that meanwhile would hand clients an empty or partial
// registry (reads returning [], a watch SYNCED before any object, DNS
// NXDOMAIN that resolvers cache). So a server serves reads, watches and
// DNS only once it has caught up:
//
//   - a leader, once its barrier after the election applied everything
//     committed before it (a single server's own log included);
//   - a follower, once its store reached the revision the leader's had when
//     it first heard from it (revisions are Raft indexes of changes, the
//     same on every server; the store's revision moves only once the state
//     machine has applied a change, where Raft's own applied index moves
//     when an entry is handed to it).
//
// Caught up stays true for the life of the process. Ready (what /readyz
// and gRPC health report) also asks that a follower still hears from a
// leader within MaxStale: one cut off keeps serving what it has (complete,
// if stale), but tells load balancers to prefer another.
type readiness struct {
	once     sync.Once
	caughtUp chan struct{} // closed once caught up
	target   atomic.Int64  // a follower's catch-up revision, once known (-1: not yet)
}

func (r *readiness) init() {
	r.caughtUp = make(chan struct{})
	r.target.Store(-1)
}

func (r *readiness) done() { r.once.Do(func() { close(r.caughtUp) }) }

// CaughtUp reports whether this server has caught up since it started.
func (n *Node) CaughtUp() bool {
	select {
	case <-n.ready.caughtUp:
		return true
	default:
		return false
	}
}

// WaitCaughtUp waits until this server has caught up or ctx ends; then it
// fails with ErrNotReady.
func (n *Node) WaitCaughtUp(ctx context.Context) error {
	select {
	case <-n.ready.caughtUp:
		return nil
	case <-ctx.Done():
		return n.notReady()
	}
}

// CheckCaughtUp is nil once this server has caught up, ErrNotReady before.
func (n *Node) CheckCaughtUp() error {
	if n.CaughtUp() {
		return nil
	}
	return n.notReady()
}

func (n *Node) notReady() error {
	leader := n.Leader()
	if leader == "" {
		return fmt.Errorf("%w: it has not heard from a raft leader since it started", ErrNotReady)
	}
	return fmt.Errorf("%w: it is at revision %d of the %d the leader (%s) had", ErrNotReady, n.store.Revision(), n.ready.target.Load(), leader)
}

// Ready is nil when this server may claim readiness: caught up, and the
// leader or in contact with one within MaxStale.
func (n *Node) Ready() error {
	if !n.CaughtUp() {
		return n.notReady()
	}
	if n.IsLeader() {
		return nil
	}
	if last := n.raft.LastContact(); n.Leader() == "" || time.Since(last) > n.cfg.MaxStale {
		return fmt.Errorf("%w: it has not heard from a raft leader for over %v (serving what it has)", ErrNotReady, n.cfg.MaxStale)
	}
	return nil
}

// watchCatchUp marks the server caught up as soon as it is.
func (n *Node) watchCatchUp() {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !n.CaughtUp() {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		if n.caughtUpNow() {
			n.log.Info("caught up: serving reads, watches and DNS", "revision", n.store.Revision(), "state", n.State())
			n.ready.done()
		}
	}
}

func (n *Node) caughtUpNow() bool {
	switch n.raft.State() {
	case raft.Leader:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.barrierDone
	case raft.Follower:
	default:
		return false
	}
	if n.raft.LastContact().IsZero() || n.Leader() == "" {
		return false
	}
	if n.ready.target.Load() < 0 {
		info, err := n.leaderInfo()
		if err != nil {
			return false
		}
		n.ready.target.Store(info.GetRevision())
	}
	return n.store.Revision() >= n.ready.target.Load()
}

// leaderInfo asks the leader about itself over the peer port.
func (n *Node) leaderInfo() (*clusterv1.GetNodeInfoResponse, error) {
	conn, err := n.LeaderConn()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return clusterv1.NewPeerServiceClient(conn).GetNodeInfo(ctx, &clusterv1.GetNodeInfoRequest{})
}

// watchDisk refuses writes while the data dir's file system is short of
// space, and lets them through again once it is not.
func (n *Node) watchDisk() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastHandOff time.Time
	for {
		free, err := freeBytes(n.cfg.DataDir)
		full := err == nil && free < n.cfg.MinFreeDisk
		if was := n.diskFull.Swap(full); was != full {
			if full {
				n.log.Error("the data dir's disk is nearly full: writes are refused until space is freed", "data_dir", n.cfg.DataDir, "free_bytes", free, "reserve_bytes", n.cfg.MinFreeDisk)
			} else {
				n.log.Info("disk space is back: writes resume", "data_dir", n.cfg.DataDir, "free_bytes", free)
			}
		}
		// A leader that cannot write would refuse every write of the
		// cluster: it hands leadership to a server with room.
		if full && n.IsLeader() && time.Since(lastHandOff) > n.cfg.scale(5*time.Second) {
			lastHandOff = time.Now()
			n.handOffLeadership(free)
		}
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
	}
}

// handOffLeadership transfers leadership to a caught-up voter whose disk
// has room, and says so; with none, it says that too.
func (n *Node) handOffLeadership(free int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	peers, err := n.Peers(ctx)
	cancel()
	if err != nil {
		return
	}
	for _, p := range peers {
		if string(p.Server.ID) == n.cfg.NodeID || p.Server.Suffrage != raft.Voter || p.Info == nil || p.Info.GetDiskFull() || !p.Info.GetCaughtUp() {
			continue
		}
		n.log.Warn("this leader's disk is below its reserve: handing leadership to a server with room", "to", p.Server.ID,
			"free_bytes", free, "reserve_bytes", n.cfg.MinFreeDisk)
		if err := n.raft.LeadershipTransferToServer(p.Server.ID, p.Server.Address).Error(); err != nil {
			n.log.Warn("handing leadership over failed; trying again shortly", "to", p.Server.ID, "err", err)
		}
		return
	}
	n.log.Error("this leader's disk is below its reserve and no other server has room (or is caught up): writes are refused until space is freed",
		"free_bytes", free, "reserve_bytes", n.cfg.MinFreeDisk)
}
