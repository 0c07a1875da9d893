// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// A cluster member whose data dir lost entries it had acknowledged (see
// durability.go) cannot simply start with what is left: Raft's safety
// rests on every voter keeping what it acknowledged. With an entry
// committed by {A, B} and lost by B, B voting for C (which never had it)
// elects a leader without it, and the cluster forgets a write it
// confirmed. So such a server, when one of its --join servers leads a
// cluster (or follows a live leader):
//
//  1. moves its Raft data aside, as --rejoin does, and starts empty;
//  2. asks to join again: the leader replaces it with a non-voter
//     (membership.go), which autopilot promotes only once it has caught up;
//  3. meanwhile refuses every vote and pre-vote request (voteGate) until
//     its log reaches the last index it had lost, so that not even a
//     candidate that still counts it as a voter can win with its help.
//
// It reports ready only once caught up (ready.go), as any follower. When
// no peer can heal it, it refuses to start and says what was lost; a
// supervisor's next start tries again.

// healer finds a server that can heal this one (one of its last
// configuration's, or of --join): in a cluster with a live leader. It
// returns that server's ID.
func (n *Node) healer(peers []string) (string, error) {
	var tried []string
	for _, addr := range slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(n.cfg.Join), peers...)))) {
		if addr == n.PeerAddr() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := n.nodeInfo(ctx, addr)
		cancel()
		switch {
		case err != nil:
			tried = append(tried, fmt.Sprintf("%s: %v", addr, err))
		case info.GetId() == n.cfg.NodeID:
			tried = append(tried, fmt.Sprintf("%s is this server's own ID (%s)", addr, info.GetId()))
		case !info.GetBootstrapped():
			tried = append(tried, fmt.Sprintf("%s (%s) is in no cluster", addr, info.GetId()))
		case info.GetState() == "leader" || info.GetLastContactMs() >= 0 && time.Duration(info.GetLastContactMs())*time.Millisecond < n.cfg.MaxStale:
			return info.GetId(), nil
		default:
			tried = append(tried, fmt.Sprintf("%s (%s) has no live leader", addr, info.GetId()))
		}
	}
	if len(tried) == 0 {
		return "", errors.New("it knows no other server (no --join, and no other server in the configuration its data dir holds)")
	}
	return "", fmt.Errorf("no server leads: %s", strings.Join(tried, "; "))
}

// lastPeers is the peer addresses of the other servers in the last Raft
// configuration a damaged data dir still holds: the newest snapshot's,
// or a later configuration entry that still reads back.
func lastPeers(logs raft.LogStore, snaps raft.SnapshotStore, self string) []string {
	var conf raft.Configuration
	var from uint64 = 1
	if metas, err := snaps.List(); err == nil && len(metas) > 0 {
		conf, from = metas[0].Configuration, metas[0].Index+1
	}
	first, _ := logs.FirstIndex()
	last, _ := logs.LastIndex()
	var entry raft.Log
	for i := max(from, first); i <= last && i > 0; i++ {
		if logs.GetLog(i, &entry) != nil {
			break
		}
		if entry.Type == raft.LogConfiguration {
			conf = raft.DecodeConfiguration(entry.Data)
		}
	}
	var out []string
	for _, s := range conf.Servers {
		if string(s.ID) != self {
			out = append(out, string(s.Address))
		}
	}
	return out
}

// voteHeld reports whether this server must still refuse votes: its log
// has not yet reached what its data dir lost.
func (n *Node) voteHeld() bool {
	return n.raft == nil || n.raft.LastIndex() < n.lostUpTo
}

// voteGate is Raft's network transport, but while held() it answers vote
// and pre-vote requests itself, refusing them, instead of handing them to
// Raft. Everything else passes through.
type voteGate struct {
	*raft.NetworkTransport
	id      raft.ServerID
	held    func() bool
	out     chan raft.RPC
	release bool // held() was false once: it never holds again
}

func newVoteGate(t *raft.NetworkTransport, id raft.ServerID, held func() bool, stop <-chan struct{}) *voteGate {
	g := &voteGate{NetworkTransport: t, id: id, held: held, out: make(chan raft.RPC)}
	go g.run(stop)
	return g
}

func (g *voteGate) Consumer() <-chan raft.RPC { return g.out }

func (g *voteGate) run(stop <-chan struct{}) {
	in := g.NetworkTransport.Consumer()
	for {
		select {
		case <-stop:
			return
		case rpc := <-in:
			if !g.release && !g.held() {
				g.release = true
			}
			if !g.release && g.refuse(rpc) {
				continue
			}
			select {
			case g.out <- rpc:
			case <-stop:
				return
			}
		}
	}
}

// refuse answers a vote or pre-vote request with a refusal at the
// candidate's own term (so it neither steps down nor counts a vote).
func (g *voteGate) refuse(rpc raft.RPC) bool {
	header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(g.id), Addr: []byte(g.LocalAddr())}
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		rpc.Respond(&raft.RequestVoteResponse{RPCHeader: header, Term: req.Term, Granted: false}, nil)
		return true
	case *raft.RequestPreVoteRequest:
		rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: header, Term: req.Term, Granted: false}, nil)
		return true
	}
	return false
}
