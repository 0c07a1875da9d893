// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package cluster replicates the store with Raft (hashicorp/raft), as
// Consul and Nomad do with go-memdb: every write is a log entry that every
// server's state machine applies to its store, at a revision equal to the
// entry's index. A single server runs the same path with one voter.
//
// The package owns the server's peer side: the peer port (peer.go), where
// Raft and the peer gRPC surface share one listener behind a handshake;
// proposing and forwarding writes (propose.go); forming the cluster,
// joining it as a non-voter and autopilot (membership.go); when a server
// has caught up enough to serve (ready.go); and the checks that a damaged
// data dir never starts silently (durability.go). docs/durability.md
// explains the design.
package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/svcreg/svcreg/internal/certs"
	"github.com/svcreg/svcreg/internal/store"
)

// Config configures a server's place in the cluster.
type Config struct {
	NodeID string // default: the host name
	// RaftAddr is the peer port's address: Raft and the peer gRPC surface.
	// Empty runs a single server over an in-memory transport, with no peer
	// port at all.
	RaftAddr string
	// DataDir holds the Raft log (raft-wal), stable store and snapshots;
	// empty keeps them in memory (nothing survives a restart).
	DataDir string
	// BootstrapExpect is how many servers form the cluster; 1 bootstraps
	// alone.
	BootstrapExpect int
	// Join lists other servers' peer addresses, to form or join a cluster.
	Join []string
	// Rejoin discards this server's Raft data at start (moving it aside)
	// and copies the state from the cluster through Join.
	Rejoin bool
	// GRPCAddr is this server's client gRPC address, recorded for
	// operators.
	GRPCAddr string
	// Secret is the cluster secret the peer handshake proves; empty lets
	// any peer in (the server warns) unless TLS admits only the cluster's.
	Secret []byte
	// TLS is the peer port's mutual TLS: this server's certificate (which
	// must name certs.PeerName) and the cluster CA every other server's
	// chains to. Nil: plaintext.
	TLS *certs.Reloader
	// TimeoutScale multiplies Raft's timings (heartbeat and election 1 s,
	// leader lease 500 ms, commit 50 ms) and autopilot's; default 1.
	TimeoutScale float64
	// HoldTimeout is how long a write waits for a leader; default 7 s.
	HoldTimeout time.Duration
	// MaxStale is how long a caught-up follower may go without hearing from
	// a leader before it stops claiming readiness; default ten election
	// timeouts.
	MaxStale time.Duration
	// MinFreeDisk is the free space the data dir's file system must keep:
	// below it writes fail with DISK_FULL; default 64 MiB.
	MinFreeDisk int64
	// MaxEntryBytes bounds one command; default raft.SuggestedMaxDataSize
	// (512 KiB).
	MaxEntryBytes int
	// Snapshots: Raft snapshots the store once the log has SnapshotThreshold
	// entries past the last snapshot (checked every SnapshotInterval), and
	// keeps TrailingLogs entries behind it for followers to catch up from;
	// defaults 16384, 30 s and 10240 (Consul's raft_snapshot_threshold,
	// raft_snapshot_interval, raft_trailing_logs).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SegmentSize is the size of each raft-wal log segment, preallocated
	// when the segment is created; default 64 MiB (Consul's
	// raft_logstore.wal.segment_size_mb). MinFreeDisk should cover one.
	SegmentSize int
	// Limits are the store's per-object limits, checked before proposing.
	Limits store.Limits
	Logger *slog.Logger

	// Transport replaces Raft's network transport (tests run clusters in
	// one process over raft.InmemTransport); the peer gRPC surface then
	// listens on PeerAddr.
	Transport raft.Transport
	PeerAddr  string
}

func (c *Config) setDefaults() {
	if c.NodeID == "" {
		c.NodeID, _ = os.Hostname()
	}
	c.BootstrapExpect = max(c.BootstrapExpect, 1)
	if c.TimeoutScale <= 0 {
		c.TimeoutScale = 1
	}
	if c.HoldTimeout <= 0 {
		c.HoldTimeout = DefaultHold
	}
	if c.MaxStale <= 0 {
		c.MaxStale = c.scale(10 * time.Second)
	}
	if c.MinFreeDisk == 0 {
		c.MinFreeDisk = 64 << 20
	}
	if c.MaxEntryBytes <= 0 {
		c.MaxEntryBytes = raft.SuggestedMaxDataSize
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 16384
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.Limits == (store.Limits{}) {
		c.Limits = store.DefaultLimits
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PeerAddr == "" && c.Transport == nil {
		c.PeerAddr = c.RaftAddr
	}
}

func (c *Config) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.TimeoutScale)
}

// Node is one server of the cluster.
type Node struct {
	cfg       Config
	log       *slog.Logger
	raft      *raft.Raft
	store     *store.Store
	transport raft.Transport
	peer      *peerNet // nil for a server alone in memory
	stable    raft.StableStore
	closers   []io.Closer

	// mu guards the fields below it up to restoring. It is a leaf: nothing
	// that blocks (Raft, the store, a dial) runs while it is held.
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // peers' gRPC, by peer address
	// barrierDone: this server leads and a barrier has applied everything
	// committed before its election (consistent reads wait for it).
	barrierDone bool
	leaderObs   []chan bool
	// leaderChanged is closed (and replaced) whenever this server sees a
	// new leader, or loses it: held writes retry at once.
	leaderChanged chan struct{}
	// restoring is held (write-locked) by Restore, and read-locked by
	// each command in flight, so that a restore sees every command this
	// server proposed applied before it picks the restored revision.
	// Lock order: restoring, then (inside Raft's apply) store.Store.mu.
	restoring sync.RWMutex

	ready    readiness
	members  *membership
	diskFull atomic.Bool
	// lostUpTo: this server's data dir lost entries up to this index, and
	// it heals from its peers; it does not vote before its log reaches it.
	lostUpTo uint64
	failed   chan error // the server must stop: one error, then closed

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open starts the server's Raft: it checks and restores the store from the
// data dir's snapshot and log, then bootstraps, joins or waits for the
// cluster. A data dir that lost entries makes it fail, saying what was
// lost.
func Open(cfg Config, st *store.Store) (*Node, error) {
	cfg.setDefaults()
	if len(cfg.NodeID) == 0 || len(cfg.NodeID) > maxNodeID || strings.ContainsFunc(cfg.NodeID, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("--node-id %q: want 1 to %d printable characters without spaces", cfg.NodeID, maxNodeID)
	}
	if cfg.RaftAddr != "" {
		if host, _, err := net.SplitHostPort(cfg.RaftAddr); err != nil || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			return nil, fmt.Errorf("--raft-addr %q: want the host:port other servers reach this one at (not a wildcard address)", cfg.RaftAddr)
		}
	}
	n := &Node{cfg: cfg, log: cfg.Logger, store: st, conns: map[string]*grpc.ClientConn{},
		stop: make(chan struct{}), leaderChanged: make(chan struct{}), failed: make(chan error, 1)}
	n.ready.init()
	rc := n.raftConfig()
	if err := n.openRaft(rc); err != nil {
		n.closeStores()
		return nil, err
	}
	if len(cfg.Secret) == 0 && cfg.TLS == nil && n.peer != nil {
		n.log.Warn("the peer port accepts any server: set a cluster secret (--cluster-secret-file) so that only this cluster's servers can join, replicate or forward", "peer_addr", n.PeerAddr())
	}
	n.members = newMembership(n)
	observations := make(chan raft.Observation, 16)
	n.raft.RegisterObserver(raft.NewObserver(observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	n.wg.Go(func() { n.watchLeaders(observations) })
	n.wg.Go(n.watchLeadership)
	n.wg.Go(n.members.run)
	n.wg.Go(n.watchCatchUp)
	if cfg.DataDir != "" {
		n.wg.Go(n.watchDisk)
	}
	return n, nil
}

func (n *Node) raftConfig() *raft.Config {
	cfg := &n.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.scale(time.Second)
	rc.ElectionTimeout = cfg.scale(time.Second)
	rc.LeaderLeaseTimeout = cfg.scale(500 * time.Millisecond)
	rc.CommitTimeout = cfg.scale(50 * time.Millisecond)
	rc.MaxAppendEntries = 64
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.Logger = libraryLogger(n.log, "raft", hclog.Warn)
	return rc
}

// openRaft opens (and checks) the stores and the transport and starts
// Raft.
func (n *Node) openRaft(rc *raft.Config) error {
	cfg := &n.cfg
	if cfg.PeerAddr != "" {
		lis, err := net.Listen("tcp", cfg.PeerAddr)
		if err != nil {
			return fmt.Errorf("peer port: %w", err)
		}
		if n.peer, err = newPeerNet(lis, cfg.NodeID, cfg.Secret, cfg.TLS, n.log); err != nil {
			lis.Close()
			return err
		}
		n.closers = append(n.closers, closerFunc(n.peer.close))
	}
	var logs raft.LogStore
	var snaps raft.SnapshotStore
	if cfg.DataDir == "" {
		mem := raft.NewInmemStore()
		logs, n.stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		var err error
		if logs, snaps, err = n.openDurable(rc); err != nil {
			return err
		}
	}
	n.openTransport(rc)
	existing, err := raft.HasExistingState(logs, n.stable, snaps)
	if err != nil {
		return err
	}
	r, err := raft.NewRaft(rc, &fsm{store: n.store}, logs, n.stable, snaps, n.transport)
	if err != nil {
		return err
	}
	n.raft = r
	if cfg.DataDir != "" {
		if err := checkRestoredSnapshot(cfg.DataDir, r, snaps); err != nil {
			r.Shutdown().Error()
			return err
		}
	}
	if !existing && cfg.BootstrapExpect == 1 && len(cfg.Join) == 0 {
		err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.transport.LocalAddr()}}}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.Shutdown().Error()
			return err
		}
	}
	return nil
}

// openDurable opens the data dir's log, stable store and snapshots, and
// checks that they hold everything this server acknowledged. A member
// whose data dir lost entries heals from its peers when one of them leads
// (heal.go); otherwise it refuses to start.
func (n *Node) openDurable(rc *raft.Config) (raft.LogStore, raft.SnapshotStore, error) {
	cfg := &n.cfg
	if cfg.Rejoin {
		aside, err := discardData(cfg.DataDir)
		if err != nil {
			return nil, nil, fmt.Errorf("--rejoin: %w", err)
		}
		n.log.Warn("--rejoin: this server's Raft data was moved aside; it starts empty and copies the state from the cluster", "moved_to", aside)
	}
	logs, snaps, err := n.openChecked(rc)
	var loss *lossError
	if !errors.As(err, &loss) || cfg.Rejoin || n.peer == nil {
		return logs, snaps, err
	}
	via, herr := n.healer(loss.peers)
	if herr != nil {
		return nil, nil, fmt.Errorf("%w (it heals by itself from its --join servers once one of them leads: %v)", err, herr)
	}
	aside, derr := discardData(cfg.DataDir)
	if derr != nil {
		return nil, nil, fmt.Errorf("%w (moving the damaged data aside failed: %v)", err, derr)
	}
	n.log.Error("this server's data dir lost entries it had acknowledged: it moved its data aside and copies the state from the cluster, and votes only once it has them all again",
		"lost_first", loss.first, "lost_last", loss.last, "detail", loss.msg, "moved_to", aside, "via", via)
	cfg.Rejoin = true
	cfg.Join = append(cfg.Join, loss.peers...) // where it asks to join again
	n.lostUpTo = loss.last
	return n.openChecked(rc)
}

// openChecked opens the data dir's stores and runs checkLog.
func (n *Node) openChecked(rc *raft.Config) (raft.LogStore, raft.SnapshotStore, error) {
	cfg := &n.cfg
	w, err := openLog(cfg.DataDir, cfg.SegmentSize)
	if err != nil {
		return nil, nil, err
	}
	closeAll := func() { w.Close() }
	fs, err := raft.NewFileSnapshotStoreWithLogger(raftDir(cfg.DataDir), 2, rc.Logger)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	mark, claimed, err := openStoredMark(cfg.DataDir, w, w)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	if err := checkLog(cfg.DataDir, w, fs, claimed); err != nil {
		var loss *lossError
		if errors.As(err, &loss) {
			loss.peers = lastPeers(w, fs, cfg.NodeID)
		}
		if mark != nil {
			mark.Close()
		}
		closeAll()
		return nil, nil, err
	}
	if mark == nil {
		last, err := w.LastIndex()
		if err == nil {
			mark, err = createMark(cfg.DataDir, last)
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("making the stored-index record %s: %w", markPath(cfg.DataDir), err)
		}
	}
	n.closers = append(n.closers, w, mark)
	n.stable = w
	return &guardedLog{LogStore: w, failed: n.failLog, mark: mark}, fs, nil
}

// openTransport picks Raft's transport.
func (n *Node) openTransport(rc *raft.Config) {
	cfg := &n.cfg
	switch {
	case cfg.Transport != nil:
		n.transport = cfg.Transport
	case cfg.RaftAddr == "":
		_, n.transport = raft.NewInmemTransport(raft.ServerAddress(cfg.NodeID))
	default:
		nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: raftLayer{n.peer}, MaxPool: 3, Timeout: 10 * time.Second, Logger: rc.Logger})
		n.transport = nt
		if n.lostUpTo > 0 {
			n.transport = newVoteGate(nt, rc.LocalID, n.voteHeld, n.stop)
		}
	}
	if c, ok := n.transport.(io.Closer); ok {
		n.closers = append(n.closers, c)
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// failLog records that the server must stop: its log store failed a
// write.
func (n *Node) failLog(err error) {
	n.log.Error("the Raft log store failed a write: svcreg stops so that a supervisor restarts it with a clean log (writes before this one are safe)",
		"data_dir", n.cfg.DataDir, "err", err)
	n.stopWith(fmt.Errorf("raft log in %s: %w", walDir(n.cfg.DataDir), err))
}

// fail records that the server must stop, with why.
func (n *Node) fail(err error) {
	n.log.Error("svcreg stops", "err", err)
	n.stopWith(err)
}

func (n *Node) stopWith(err error) {
	select {
	case n.failed <- err:
	default:
	}
}

// Failed delivers an error when the server must stop: its log store failed
// a write, or the cluster refused it (its node ID is another server's).
func (n *Node) Failed() <-chan error { return n.failed }

// watchLeaders wakes held writes whenever the leader this server knows
// changes.
func (n *Node) watchLeaders(observations <-chan raft.Observation) {
	for {
		select {
		case <-n.stop:
			return
		case <-observations:
			n.mu.Lock()
			close(n.leaderChanged)
			n.leaderChanged = make(chan struct{})
			n.mu.Unlock()
		}
	}
}

func (n *Node) leaderChange() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leaderChanged
}

// ID is this server's Raft ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr is this server's Raft address.
func (n *Node) RaftAddr() string { return string(n.transport.LocalAddr()) }

// PeerAddr is this server's peer port address ("" without one).
func (n *Node) PeerAddr() string {
	if n.peer == nil {
		return ""
	}
	return n.peer.lis.Addr().String()
}

// PeerListener is where the peer gRPC surface is served (nil for a server
// alone in memory, which has none).
func (n *Node) PeerListener() net.Listener {
	if n.peer == nil {
		return nil
	}
	return n.peer.grpc
}

// Raft is the underlying Raft (for stats and tests).
func (n *Node) Raft() *raft.Raft { return n.raft }

// IsLeader reports whether this server leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// State is leader, follower, candidate or shutdown.
func (n *Node) State() string { return strings.ToLower(n.raft.State().String()) }

// Leader is the leader's ID, or "".
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Bootstrapped reports whether this server has a cluster configuration.
func (n *Node) Bootstrapped() bool {
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// Servers is the cluster configuration.
func (n *Node) Servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// LeadershipChanges delivers true when this server becomes leader (after
// a barrier: its store has everything committed before) and false when it
// stops.
func (n *Node) LeadershipChanges() <-chan bool {
	ch := make(chan bool, 16)
	n.mu.Lock()
	n.leaderObs = append(n.leaderObs, ch)
	n.mu.Unlock()
	return ch
}

func (n *Node) watchLeadership() {
	for {
		select {
		case <-n.stop:
			return
		case leader := <-n.raft.LeaderCh():
			if leader {
				// A barrier applies everything committed by earlier leaders.
				if err := n.raft.Barrier(n.cfg.HoldTimeout).Error(); err != nil {
					n.log.Warn("barrier after election failed", "err", err)
					continue
				}
			}
			n.members.leading(leader)
			n.mu.Lock()
			n.barrierDone = leader
			obs := slices.Clone(n.leaderObs)
			n.mu.Unlock()
			n.log.Info("raft leadership", "leader", leader, "node", n.cfg.NodeID)
			for _, ch := range obs {
				select {
				case ch <- leader:
				default:
				}
			}
		}
	}
}

// Restore replaces the cluster's state with a snapshot of size bytes,
// through the leader (every server installs it).
//
// The restored state takes a revision after every one seen so far (the
// log's next index: Raft installs the snapshot there), so revisions never
// go back and watchers relist. Writes wait meanwhile: one proposed between
// reading the index and installing the snapshot would take a revision the
// restored state then goes back to.
func (n *Node) Restore(snapshot *os.File) error {
	if _, err := snapshot.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := n.store.Validate(snapshot); err != nil {
		return err // check it before Raft takes it
	}
	n.restoring.Lock()
	defer n.restoring.Unlock()
	rewritten, err := os.CreateTemp(filepath.Dir(snapshot.Name()), "restore-*")
	if err != nil {
		return err
	}
	defer os.Remove(rewritten.Name())
	defer rewritten.Close()
	if _, err := snapshot.Seek(0, io.SeekStart); err != nil {
		return err
	}
	size, err := n.store.PrepareRestore(rewritten, snapshot, int64(n.raft.LastIndex())+1)
	if err != nil {
		return err
	}
	if _, err := rewritten.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return raftError(n.raft.Restore(&raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size}, rewritten, 30*time.Second))
}

// Close stops Raft and closes the stores.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	close(n.stop)
	<-n.members.ap.Stop()
	err := n.raft.Shutdown().Error()
	n.wg.Wait()
	n.mu.Lock()
	for _, c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.closeStores()
	return err
}

func (n *Node) closeStores() {
	for _, c := range slices.Backward(n.closers) {
		c.Close()
	}
}
