// Package cluster replicates the store with Raft (hashicorp/raft), as
// Consul and Nomad do with go-memdb: every write is a log entry that every
// server's state machine applies to its store, at a revision equal to the
// entry's index. A single server runs the same path with one voter.
package cluster

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/store"
)

// Config configures a server's place in the cluster.
type Config struct {
	NodeID string // default: the host name
	// RaftAddr is the Raft listen address; empty runs a single server over
	// an in-memory transport.
	RaftAddr string
	// DataDir holds the Raft log (raft-wal), stable store and snapshots;
	// empty keeps them in memory (nothing survives a restart).
	DataDir string
	// BootstrapExpect is how many servers form the cluster; 1 bootstraps
	// alone.
	BootstrapExpect int
	// Join lists other servers' gRPC addresses to form or join a cluster.
	Join []string
	// GRPCAddr is this server's gRPC address, where others forward writes.
	GRPCAddr string
	// TimeoutScale multiplies Raft's timings (heartbeat and election 1 s,
	// leader lease 500 ms, commit 50 ms); default 1.
	TimeoutScale float64
	// HoldTimeout is how long a write waits for a leader; default 7 s.
	HoldTimeout time.Duration
	Logger      *slog.Logger

	// Transport replaces the TCP transport (tests: raft.InmemTransport).
	Transport raft.Transport
}

// Node is one server of the cluster.
type Node struct {
	cfg       Config
	log       *slog.Logger
	raft      *raft.Raft
	store     *store.Store
	transport raft.Transport
	closers   []io.Closer

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // peers' gRPC, by address
	// leaderSince is when this server last became leader (a barrier has
	// then applied everything committed before: consistent reads wait for
	// it).
	barrierDone bool
	leaderObs   []chan bool
	// restoring is held (write-locked) by Restore, and read-locked by
	// each command in flight, so that a restore sees every command this
	// server proposed applied before it picks the restored revision.
	restoring sync.RWMutex
	// leaderChanged is closed (and replaced) whenever this server sees a
	// new leader, or loses it: held writes retry at once.
	leaderChanged chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open starts the server's Raft: it restores the store from the data
// dir's snapshot and log, then bootstraps, joins or waits for the cluster.
func Open(cfg Config, st *store.Store) (*Node, error) {
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = host
	}
	if cfg.BootstrapExpect <= 0 {
		cfg.BootstrapExpect = 1
	}
	if cfg.TimeoutScale <= 0 {
		cfg.TimeoutScale = 1
	}
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = 7 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, store: st, conns: map[string]*grpc.ClientConn{}, stop: make(chan struct{}), leaderChanged: make(chan struct{})}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * cfg.TimeoutScale) }
	rc.HeartbeatTimeout = scale(time.Second)
	rc.ElectionTimeout = scale(time.Second)
	rc.LeaderLeaseTimeout = scale(500 * time.Millisecond)
	rc.CommitTimeout = scale(50 * time.Millisecond)
	rc.MaxAppendEntries = 64
	rc.SnapshotThreshold = 16384
	rc.SnapshotInterval = 30 * time.Second
	rc.TrailingLogs = 10240
	rc.BatchApplyCh = true
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{cfg.Logger}})

	var logs raft.LogStore
	var stable raft.StableStore
	var snaps raft.SnapshotStore
	if cfg.DataDir == "" {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		walDir := filepath.Join(cfg.DataDir, "raft", "wal")
		if err := os.MkdirAll(walDir, 0o700); err != nil {
			return nil, err
		}
		w, err := wal.Open(walDir)
		if err != nil {
			return nil, fmt.Errorf("raft log in %s: %w", walDir, err)
		}
		n.closers = append(n.closers, w)
		logs, stable = w, w
		fs, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.DataDir, "raft"), 2, rc.Logger)
		if err != nil {
			return nil, err
		}
		snaps = fs
	}

	switch {
	case cfg.Transport != nil:
		n.transport = cfg.Transport
	case cfg.RaftAddr == "":
		_, n.transport = raft.NewInmemTransport(raft.ServerAddress(cfg.NodeID))
	default:
		addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
		if err != nil {
			return nil, fmt.Errorf("--raft-addr: %w", err)
		}
		t, err := raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, 3, 10*time.Second, rc.Logger)
		if err != nil {
			return nil, fmt.Errorf("raft transport: %w", err)
		}
		n.transport = t
	}
	if c, ok := n.transport.(io.Closer); ok {
		n.closers = append(n.closers, c)
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, err
	}
	r, err := raft.NewRaft(rc, &fsm{store: st}, logs, stable, snaps, n.transport)
	if err != nil {
		n.closeStores()
		return nil, err
	}
	n.raft = r
	if !existing && cfg.BootstrapExpect == 1 && len(cfg.Join) == 0 {
		if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.transport.LocalAddr()}}}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Close()
			return nil, err
		}
	}
	observations := make(chan raft.Observation, 16)
	r.RegisterObserver(raft.NewObserver(observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	n.wg.Add(4)
	go n.watchLeaders(observations)
	go n.watchLeadership()
	go n.form(existing)
	go n.keepAnnounced()
	return n, nil
}

// watchLeaders wakes held writes whenever the leader this server knows
// changes.
func (n *Node) watchLeaders(observations <-chan raft.Observation) {
	defer n.wg.Done()
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

// keepAnnounced makes sure the store records this server's addresses, so
// that the others can forward to it once it leads and operators see it.
func (n *Node) keepAnnounced() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case <-time.After(time.Second):
		}
		if cur := n.store.Node(n.cfg.NodeID); cur != nil && cur.GetGrpcAddress() == n.cfg.GRPCAddr && cur.GetRaftAddress() == n.RaftAddr() {
			continue
		}
		if n.Leader() == "" {
			continue
		}
		cmd := &storev1.Command{Op: &storev1.Command_SetNode{SetNode: &storev1.SetNode{Id: n.cfg.NodeID, GrpcAddress: n.cfg.GRPCAddr, RaftAddress: n.RaftAddr()}}}
		if _, err := n.Apply(cmd); err != nil {
			n.log.Debug("announcing this server's address", "err", err)
		}
	}
}

// slogWriter carries raft's log lines into slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}

// ID is this server's Raft ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr is this server's Raft address.
func (n *Node) RaftAddr() string { return string(n.transport.LocalAddr()) }

// Raft is the underlying Raft (for stats and tests).
func (n *Node) Raft() *raft.Raft { return n.raft }

// IsLeader reports whether this server leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// State is leader, follower, candidate or shutdown.
func (n *Node) State() string { return strings.ToLower(n.raft.State().String()) }

// Bootstrapped reports whether this server has a cluster configuration.
func (n *Node) Bootstrapped() bool {
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// LeaderGRPC returns the leader's gRPC address, when known.
func (n *Node) LeaderGRPC() (string, bool) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", false
	}
	if string(id) == n.cfg.NodeID {
		return n.cfg.GRPCAddr, true
	}
	if node := n.store.Node(string(id)); node != nil && node.GetGrpcAddress() != "" {
		return node.GetGrpcAddress(), true
	}
	return "", false
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
	defer n.wg.Done()
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
				n.announce()
			}
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

// announce records this server's addresses in the store (as leader).
func (n *Node) announce() {
	if cur := n.store.Node(n.cfg.NodeID); cur != nil && cur.GetGrpcAddress() == n.cfg.GRPCAddr && cur.GetRaftAddress() == n.RaftAddr() {
		return
	}
	cmd := &storev1.Command{Op: &storev1.Command_SetNode{SetNode: &storev1.SetNode{Id: n.cfg.NodeID, GrpcAddress: n.cfg.GRPCAddr, RaftAddress: n.RaftAddr()}}}
	if _, err := n.ApplyLocal(cmd); err != nil {
		n.log.Warn("recording this server's address failed", "err", err)
	}
}

// Apply proposes a command from any server: the leader applies it, a
// follower forwards it to the leader. While there is no leader it retries
// until the hold timeout, then fails with UNAVAILABLE. Every command gets
// a request id, so retrying after an unknown outcome (a leader lost
// between commit and answer) never applies it twice.
func (n *Node) Apply(cmd *storev1.Command) (*store.Result, error) {
	if cmd.GetRequestId() == "" {
		cmd.RequestId = newRequestID()
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.HoldTimeout)
	defer cancel()
	delay := 10 * time.Millisecond
	var last error
	for {
		changed := n.leaderChange()
		res, err, retry := n.applyOnce(ctx, cmd)
		if !retry {
			return res, err
		}
		last = err
		// Back off with jitter, but retry as soon as a leader is seen.
		sleep := delay/2 + rand.N(delay/2+1)
		delay = min(2*delay, 200*time.Millisecond)
		select {
		case <-ctx.Done():
			return nil, status.Errorf(codes.Unavailable, "no raft leader answered within %v: %v", n.cfg.HoldTimeout, last)
		case <-changed:
		case <-time.After(sleep):
		}
	}
}

// applyOnce tries once; retry says whether another try may succeed.
func (n *Node) applyOnce(ctx context.Context, cmd *storev1.Command) (*store.Result, error, bool) {
	if n.IsLeader() {
		res, err := n.ApplyLocal(cmd)
		if errors.Is(err, errNotLeader) {
			return nil, err, true
		}
		return res, err, false
	}
	addr, ok := n.LeaderGRPC()
	if !ok {
		return nil, errors.New("no leader"), true
	}
	conn, err := n.conn(addr)
	if err != nil {
		return nil, err, true
	}
	resp, err := storev1.NewReplicationServiceClient(conn).ApplyCommand(ctx, &storev1.ApplyCommandRequest{Command: cmd})
	if err != nil {
		// The leader moved or is unreachable: a retry is safe (request id).
		if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded || c == codes.Canceled && ctx.Err() == nil {
			return nil, err, true
		}
		return nil, err, false
	}
	return &store.Result{Revision: resp.GetRevision(), Service: resp.GetService(), Instance: resp.GetInstance(), Endpoints: resp.GetEndpoints()}, nil, false
}

var errNotLeader = status.Error(codes.Unavailable, "this server is not the raft leader")

// ApplyLocal applies a command through this server's Raft, which must be
// the leader (lease expiries, forwarded writes).
func (n *Node) ApplyLocal(cmd *storev1.Command) (*store.Result, error) {
	if cmd.GetRequestId() == "" {
		cmd.RequestId = newRequestID()
	}
	b, err := encodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	n.restoring.RLock()
	defer n.restoring.RUnlock()
	f := n.raft.Apply(b, n.cfg.HoldTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return nil, errNotLeader
		}
		return nil, err
	}
	resp, _ := f.Response().(applyResponse)
	return resp.res, resp.err
}

// VerifyLeader confirms, for a linearizable read, that this server still
// leads (a quorum answered) and has applied everything committed before
// its election.
func (n *Node) VerifyLeader() error {
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return errNotLeader
	}
	n.mu.Lock()
	done := n.barrierDone
	n.mu.Unlock()
	if !done {
		return errNotLeader
	}
	return nil
}

// LeaderConn is a connection to the leader's gRPC server (for forwarding
// reads and lease renewals), or an error when there is none.
func (n *Node) LeaderConn() (*grpc.ClientConn, error) {
	addr, ok := n.LeaderGRPC()
	if !ok {
		return nil, status.Error(codes.Unavailable, "no raft leader is known")
	}
	return n.conn(addr)
}

// ConnTo is a (shared) connection to another server's gRPC address.
func (n *Node) ConnTo(addr string) (*grpc.ClientConn, error) { return n.conn(addr) }

func (n *Node) conn(addr string) (*grpc.ClientConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.conns[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	n.conns[addr] = c
	return c, nil
}

// form bootstraps or joins the cluster when this server has no state of
// its own: it asks the --join servers until it finds a cluster to join, or
// enough unbootstrapped servers (BootstrapExpect, itself included) to
// bootstrap one with; every server computes the same configuration.
func (n *Node) form(existing bool) {
	defer n.wg.Done()
	if existing || (n.cfg.BootstrapExpect == 1 && len(n.cfg.Join) == 0) {
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
		if n.Bootstrapped() {
			return // someone added us
		}
		servers := map[string]raft.Server{n.cfg.NodeID: {ID: raft.ServerID(n.cfg.NodeID), Address: n.transport.LocalAddr()}}
		joined := false
		for _, addr := range n.cfg.Join {
			info, conn, err := n.nodeInfo(addr)
			if err != nil {
				continue
			}
			if info.GetBootstrapped() {
				_, err := svcregv1.NewOperatorServiceClient(conn).Join(context.Background(), &svcregv1.JoinRequest{
					Id: n.cfg.NodeID, RaftAddress: n.RaftAddr(), GrpcAddress: n.cfg.GRPCAddr})
				if err == nil {
					n.log.Info("joined the cluster", "via", addr)
					joined = true
					break
				}
				n.log.Warn("join failed", "via", addr, "err", err)
				continue
			}
			p := info.GetNode()
			servers[p.GetId()] = raft.Server{ID: raft.ServerID(p.GetId()), Address: raft.ServerAddress(p.GetRaftAddress())}
		}
		if joined {
			return
		}
		if len(servers) >= n.cfg.BootstrapExpect {
			var conf raft.Configuration
			for _, s := range servers {
				conf.Servers = append(conf.Servers, s)
			}
			slices.SortFunc(conf.Servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
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

func (n *Node) nodeInfo(addr string) (*svcregv1.GetNodeInfoResponse, *grpc.ClientConn, error) {
	conn, err := n.conn(addr)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := svcregv1.NewOperatorServiceClient(conn).GetNodeInfo(ctx, &svcregv1.GetNodeInfoRequest{})
	return info, conn, err
}

// AddVoter adds a server (leader only).
func (n *Node) AddVoter(id, raftAddr string) error {
	return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.HoldTimeout).Error()
}

// RemoveServer removes a server (leader only).
func (n *Node) RemoveServer(id string) error {
	return n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.HoldTimeout).Error()
}

// TransferLeadership hands leadership to id, or to any server when empty.
func (n *Node) TransferLeadership(id string) error {
	if id == "" {
		return n.raft.LeadershipTransfer().Error()
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return n.raft.LeadershipTransferToServer(s.ID, s.Address).Error()
		}
	}
	return status.Errorf(codes.NotFound, "no server %q in the cluster", id)
}

// Servers is the cluster configuration.
func (n *Node) Servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// Leader is the leader's ID, or "".
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Restore replaces the cluster's state with a snapshot, through the leader
// (every server installs it).
//
// The restored state takes a revision after every one seen so far (the
// log's next index: Raft installs the snapshot there), so revisions never
// go back and watchers relist. Writes wait meanwhile: one proposed between
// reading the index and installing the snapshot would take a revision the
// restored state then goes back to.
func (n *Node) Restore(snapshot []byte) error {
	if _, err := n.store.Validate(bytes.NewReader(snapshot)); err != nil {
		return err // check it before Raft takes it
	}
	n.restoring.Lock()
	defer n.restoring.Unlock()
	snapshot, err := store.WithRevision(snapshot, int64(n.raft.LastIndex())+1)
	if err != nil {
		return err
	}
	return n.raft.Restore(&raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(len(snapshot))}, bytes.NewReader(snapshot), 30*time.Second)
}

// Close stops Raft and closes the stores.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	close(n.stop)
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
	for _, c := range n.closers {
		c.Close()
	}
}

func newRequestID() string {
	var b [16]byte
	crand.Read(b[:])
	return fmt.Sprintf("%x", b)
}
