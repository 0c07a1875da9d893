// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/svcreg/svcreg/gen/svcreg/cluster/v1"
	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/clock/clocktest"
	"github.com/svcreg/svcreg/internal/cluster"
)

// A testCluster runs servers in this process, their Raft over
// raft.InmemTransport (so tests can cut links) and gRPC on loopback.
type testCluster struct {
	t       *testing.T
	members []*member
}

type member struct {
	*testServer
	id      string
	trans   *raft.InmemTransport
	stop    func()
	stopped bool
}

// clusterTimeoutScale speeds Raft up 5x (election 200 ms): enough margin
// for the race detector on two cores.
const clusterTimeoutScale = 0.2

func startCluster(t *testing.T, n int, cfg Config) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	var conf raft.Configuration
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		_, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		c.members = append(c.members, &member{id: id, trans: trans})
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	for _, a := range c.members {
		for _, b := range c.members {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
	for _, m := range c.members {
		mcfg := cfg
		mcfg.NodeID, mcfg.RaftTransport, mcfg.BootstrapExpect = m.id, m.trans, n
		mcfg.RaftTimeoutScale = clusterTimeoutScale
		m.testServer, m.stop = runServer(t, mcfg)
		// Every server bootstraps the same configuration, as
		// --bootstrap-expect makes them do.
		if err := m.node.Raft().BootstrapCluster(conf).Error(); err != nil {
			t.Fatal(err)
		}
	}
	c.waitLeader()
	// Wait for every server's address record (followers announce
	// themselves through Raft), so that tests count only their own entries.
	waitFor(t, "every server's address record", 10*time.Second, func() bool {
		for _, m := range c.members {
			for _, o := range c.members {
				if _, err := m.store.Read().Node(o.id); err != nil {
					return false
				}
			}
		}
		return true
	})
	return c
}

func (c *testCluster) live() []*member {
	var out []*member
	for _, m := range c.members {
		if !m.stopped {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond: Raft elections run on the real clock.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLeader waits until the given members (default: the live ones)
// agree on a leader among them whose address all of them know, and
// returns it.
func (c *testCluster) waitLeader(among ...*member) *member {
	c.t.Helper()
	if len(among) == 0 {
		among = c.live()
	}
	var leader *member
	waitFor(c.t, "a leader", 10*time.Second, func() bool {
		leader = nil
		for _, m := range among {
			if m.node.IsLeader() {
				leader = m
			}
		}
		if leader == nil {
			return false
		}
		for _, m := range among {
			if m.node.Leader() != leader.id {
				return false
			}
			if _, err := m.node.LeaderConn(); err != nil {
				return false
			}
		}
		return true
	})
	return leader
}

func (c *testCluster) followers(leader *member) []*member {
	var out []*member
	for _, m := range c.live() {
		if m != leader {
			out = append(out, m)
		}
	}
	return out
}

func (c *testCluster) kill(m *member) {
	m.stop()
	m.stopped = true
}

// partition cuts m's Raft links both ways; heal restores them.
func (c *testCluster) partition(m *member) {
	m.trans.DisconnectAll()
	for _, o := range c.members {
		if o != m {
			o.trans.Disconnect(m.trans.LocalAddr())
		}
	}
}

func (c *testCluster) heal(m *member) {
	for _, o := range c.members {
		if o != m {
			m.trans.Connect(o.trans.LocalAddr(), o.trans)
			o.trans.Connect(m.trans.LocalAddr(), m.trans)
		}
	}
}

// converged waits until the live members reach rev and checks that their
// stores are identical.
func (c *testCluster) converged(rev int64) {
	c.t.Helper()
	var want string
	for i, m := range c.live() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := m.store.WaitRevision(ctx, rev)
		cancel()
		if err != nil {
			c.t.Fatalf("%s did not reach revision %d (at %d)", m.id, rev, m.store.Revision())
		}
		var b bytes.Buffer
		if err := m.store.Dump(&b); err != nil {
			c.t.Fatal(err)
		}
		if i == 0 {
			want = b.String()
		} else if diff := cmp.Diff(want, b.String()); diff != "" {
			c.t.Errorf("%s's store differs from %s's:\n%s", m.id, c.live()[0].id, diff)
		}
	}
}

func getInstance(m *member, name, consistency string, minRev int64) (*svcregv1.Instance, error) {
	resp, err := m.client.GetInstance(context.Background(), &svcregv1.GetInstanceRequest{
		Namespace: "shop", Name: name, Consistency: consistency, MinRevision: minRev})
	return resp.GetInstance(), err
}

// TestClusterForwarding: writes sent to a follower, over gRPC and REST,
// are answered as if sent to the leader; reads honour their consistency
// mode on any server; watches and DNS serve from the follower itself.
func TestClusterForwarding(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	f := c.followers(leader)[0]

	svc := f.mustCreateService(t, webSvc())
	if svc.GetClusterIp() == "" || svc.GetResourceVersion() == 0 {
		t.Fatalf("create through a follower: %v", svc)
	}
	code, body := f.do(t, "POST", "/v1/namespaces/shop/instances", `{"name":"web-1","ip":"10.0.0.1","labels":{"app":"web"},"ports":[{"name":"grpc","port":8443}]}`)
	if code != 200 {
		t.Fatalf("REST create through a follower: %d %v", code, body)
	}
	inst, err := getInstance(f, "web-1", "", 0)
	if err != nil {
		t.Fatalf("default read on a follower: %v", err)
	}
	rev := inst.GetResourceVersion()

	for _, m := range c.live() {
		for _, mode := range []string{"", "default", "consistent"} {
			if got, err := getInstance(m, "web-1", mode, 0); err != nil || got.GetIp() != "10.0.0.1" {
				t.Errorf("%s %q read: %v %v", m.id, mode, got, err)
			}
		}
		if got, err := getInstance(m, "web-1", "stale", rev); err != nil || got.GetResourceVersion() != rev {
			t.Errorf("%s stale read at min_revision %d: %v %v", m.id, rev, got, err)
		}
	}
	if _, err := getInstance(f, "web-1", "STALE", 0); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad consistency: %v", err)
	}
	if code, body := f.do(t, "GET", fmt.Sprintf("/v1/namespaces/shop/instances/web-1?consistency=stale&min_revision=%d", rev), ""); code != 200 || body["resourceVersion"] != fmt.Sprint(rev) {
		t.Errorf("REST stale read: %d %v", code, body)
	}
	// min_revision past everything: the follower cannot catch up.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = f.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: "web-1", Consistency: "stale", MinRevision: rev + 1000})
	if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Unavailable {
		t.Errorf("read at a future revision: %v", err)
	}

	// Errors from the leader come back unchanged.
	_, err = f.client.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: webSvc()})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("duplicate create through a follower: %v", err)
	}

	// A watch on the follower, resumed from before the instance existed.
	st, stopWatch := watchEndpoints(t, f.testServer, "shop", "web", svc.GetResourceVersion())
	defer stopWatch()
	expectEvents(t, st, "ADDED endpoint web-1 ready=true serving=true terminating=false")
	f.mustCreateInstance(t, webInst("web-2"))
	expectEvents(t, st, "ADDED endpoint web-2 ready=true serving=true terminating=false")

	c.converged(leader.store.Revision())
}

// TestClusterLeaderLoss kills the leader while a writer keeps writing
// through a follower: the survivors elect a leader, the writer's requests
// are held and go through, and every acknowledged write is present on
// both survivors. A watch on the follower runs through the failover.
func TestClusterLeaderLoss(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	f := c.followers(leader)[0]
	svc := f.mustCreateService(t, webSvc())
	// Resuming from the create waits for the follower to apply it.
	st, stopWatch := watchEndpoints(t, f.testServer, "shop", "web", svc.GetResourceVersion())
	defer stopWatch()

	var (
		mu    sync.Mutex
		acked []string
		top   int64
	)
	stopWriting := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				writerDone <- nil
				return
			default:
			}
			name := fmt.Sprintf("web-%d", i)
			resp, err := f.client.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: webInst(name)})
			if err != nil {
				writerDone <- fmt.Errorf("write %s during failover: %w", name, err)
				return
			}
			mu.Lock()
			acked = append(acked, name)
			top = max(top, resp.GetInstance().GetResourceVersion())
			mu.Unlock()
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, "writes before the failover", 10*time.Second, func() bool { return count() >= 20 })
	before := count()
	c.kill(leader)
	newLeader := c.waitLeader()
	waitFor(t, "writes after the failover", 10*time.Second, func() bool { return count() >= before+20 })
	close(stopWriting)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	if newLeader == leader {
		t.Fatal("the dead leader still leads")
	}

	mu.Lock()
	defer mu.Unlock()
	c.converged(top)
	for _, m := range c.live() {
		for _, name := range acked {
			if _, err := getInstance(m, name, "stale", top); err != nil {
				t.Errorf("%s lost acknowledged write %s: %v", m.id, name, err)
			}
		}
	}
	// The watch on the surviving follower saw every one of them, once.
	seen := map[string]int{}
	for _, ev := range recvN(t, st, len(acked)) {
		seen[ev.GetEndpoint().GetInstance()]++
	}
	for _, name := range acked {
		if seen[name] != 1 {
			t.Errorf("watch saw %s %d times", name, seen[name])
		}
	}
}

// TestClusterMinorityPartition cuts the leader off: it steps down, a
// write it accepted meanwhile fails and is discarded, consistent reads on
// it fail rather than answer stale data, and once healed it converges on
// the majority's history.
func TestClusterMinorityPartition(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	old := c.waitLeader()
	old.mustCreateService(t, webSvc())
	old.mustCreateInstance(t, webInst("before"))

	c.partition(old)
	lost := make(chan error, 1)
	go func() {
		// Straight into the old leader's Raft: it appends the entry but
		// can never commit it.
		_, err := old.node.ApplyLocal(context.Background(), &storev1.Command{Op: &storev1.Command_CreateInstance{
			CreateInstance: &svcregv1.CreateInstanceRequest{Instance: webInst("lost")}}})
		lost <- err
	}()
	majority := c.followers(old)
	newLeader := c.waitLeader(majority...)
	select {
	case err := <-lost:
		if !errors.Is(err, cluster.ErrNotLeader) {
			t.Errorf("uncommitted write on the cut-off leader: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cut-off leader's write neither failed nor returned")
	}
	waitFor(t, "the old leader to step down", 10*time.Second, func() bool { return !old.node.IsLeader() })
	for _, mode := range []string{"consistent", "", "default"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := old.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: "before", Consistency: mode})
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%q read on the cut-off server: %v, want UNAVAILABLE", mode, err)
		}
	}
	if _, err := getInstance(old, "before", "stale", 0); err != nil {
		t.Errorf("stale read on the cut-off server: %v", err)
	}

	after := newLeader.mustCreateInstance(t, webInst("after"))
	c.heal(old)
	c.waitLeader()
	c.converged(after.GetResourceVersion())
	for _, m := range c.members {
		if _, err := getInstance(m, "lost", "stale", 0); status.Code(err) != codes.NotFound {
			t.Errorf("%s has the uncommitted write: %v", m.id, err)
		}
		if _, err := getInstance(m, "after", "stale", 0); err != nil {
			t.Errorf("%s misses the majority's write: %v", m.id, err)
		}
	}
}

// raftTerm is a server's current Raft term.
func raftTerm(m *member) string { return m.node.Raft().Stats()["term"] }

// addressesRecorded waits until every server recorded its addresses in
// leader's store: each does so with a command of its own once it has
// caught up (on a busy machine, late), which a test counting Raft entries
// must not count.
func (c *testCluster) addressesRecorded(t *testing.T, leader *member) {
	t.Helper()
	waitFor(t, "every server to record its addresses", 30*time.Second, func() bool {
		for _, m := range c.members {
			if _, err := leader.store.Read().Node(m.node.ID()); err != nil {
				return false
			}
		}
		return true
	})
}

// renewOverOneStream renews "alive" n times through m over one KeepAlive
// stream, pipelined as a client renewing many instances would.
func renewOverOneStream(m *member, n int) error {
	ka, err := m.client.KeepAlive(context.Background())
	if err != nil {
		return err
	}
	sendErr := make(chan error, 1)
	go func() {
		for range n {
			if err := ka.Send(&svcregv1.KeepAliveRequest{Namespace: "shop", Name: "alive"}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- ka.CloseSend()
	}()
	for i := range n {
		if r, err := ka.Recv(); err != nil || !r.GetFound() {
			return fmt.Errorf("renewal %d: %v %v", i, r, err)
		}
	}
	return <-sendErr
}

// TestClusterLeases: renewals live in the leader's memory (no Raft
// entry); after a failover the new leader re-arms every lease with a
// grace period, so clients renewing at ttl/3 through any server survive,
// while an instance nobody renews lapses within grace + ttl.
func TestClusterLeases(t *testing.T) {
	t.Parallel()
	clock := clocktest.NewAt(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	const ttl = 9 * time.Second
	c := startCluster(t, 3, Config{Clock: clock, BookmarkInterval: time.Hour, LeaseGrace: 5 * time.Second})
	leader := c.waitLeader()
	f := c.followers(leader)[0]
	f.mustCreateService(t, webSvc())
	for _, name := range []string{"alive", "dead"} {
		inst := webInst(name)
		inst.TtlSeconds = int32(ttl / time.Second)
		f.mustCreateInstance(t, inst)
	}

	// 3,000 renewals through a follower (forwarded to the leader) over one
	// KeepAlive stream: no Raft entry, no revision. Each server records its
	// addresses with a command of its own, once, soon after it starts (on
	// a busy machine, late): wait for all three, so that the entries
	// counted are the renewals' alone.
	c.addressesRecorded(t, leader)
	// An election in the middle (a machine so busy that heartbeats are
	// late) appends the new leader's entries and may outlast a renewal's
	// hold: that attempt says nothing about renewals, and is made again.
	for attempt := 1; ; attempt++ {
		term := raftTerm(leader)
		index, rev := leader.node.Raft().LastIndex(), leader.store.Revision()
		err := renewOverOneStream(f, 3000)
		if raftTerm(leader) != term || leader.node.Raft().State() != raft.Leader {
			if attempt == 3 {
				t.Fatalf("three elections in three attempts: the machine is too busy for this test")
			}
			t.Logf("attempt %d: an election happened meanwhile (%v); again", attempt, err)
			leader = c.waitLeader()
			f = c.followers(leader)[0]
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := leader.node.Raft().LastIndex(); got != index {
			t.Errorf("3000 renewals appended %d Raft entries", got-index)
		}
		if got := leader.store.Revision(); got != rev {
			t.Errorf("3000 renewals moved the revision %d -> %d", rev, got)
		}
		break
	}

	// advance moves the clock once the leader's lease loop sleeps on it
	// (one timer, plus each live server's bookmark ticker).
	advance := func(d time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := clock.BlockUntilContext(ctx, len(c.live())+1); err != nil {
			t.Fatal("the leader's lease loop is not waiting on the clock")
		}
		clock.Advance(d)
	}
	renew := func(via *member) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := via.client.RenewInstanceLease(ctx, &svcregv1.RenewInstanceLeaseRequest{Namespace: "shop", Name: "alive"}); err != nil {
			t.Fatalf("renew through %s: %v", via.id, err)
		}
	}
	advance(ttl / 3)
	renew(f)

	c.kill(leader)
	newLeader := c.waitLeader()
	var via *member
	for _, m := range c.live() {
		via = m // renew through whichever survivor
	}
	// The new leader re-armed every lease at now + max(ttl, grace); the
	// client keeps renewing every ttl/3 through a survivor.
	for range 3 {
		advance(ttl / 3)
		renew(via)
	}
	waitFor(t, "the unrenewed instance to lapse", 30*time.Second, func() bool { // a bound: a busy machine is slow to commit
		_, err := getInstance(newLeader, "dead", "stale", 0)
		return status.Code(err) == codes.NotFound
	})
	if _, err := getInstance(newLeader, "alive", "consistent", 0); err != nil {
		t.Errorf("the renewed instance did not survive the failover: %v", err)
	}
	c.converged(newLeader.store.Revision())
}

// TestClusterSnapshotRestore saves a snapshot through one server,
// restores it through another after more writes: every server returns to
// the saved state at a revision past every one seen, and watches end
// with OUT_OF_RANGE (list again).
func TestClusterSnapshotRestore(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	f := c.followers(leader)[0]
	f.mustCreateService(t, webSvc())
	f.mustCreateInstance(t, webInst("kept"))

	op := func(m *member) svcregv1grpc.OperatorServiceClient {
		return svcregv1grpc.NewOperatorServiceClient(m.conn)
	}
	save, err := op(leader).SaveSnapshot(context.Background(), &svcregv1.SaveSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var snap []byte
	for {
		chunk, err := save.Recv()
		if err != nil {
			break
		}
		snap = append(snap, chunk.GetData()...)
	}
	if len(snap) == 0 {
		t.Fatal("empty snapshot")
	}

	dropped := f.mustCreateInstance(t, webInst("dropped"))
	st, stopWatch := watchEndpoints(t, f.testServer, "shop", "web", dropped.GetResourceVersion())
	defer stopWatch()

	// Garbage is refused before it reaches Raft.
	bad, err := op(f).RestoreSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bad.Send(&svcregv1.RestoreSnapshotRequest{Data: []byte("not a snapshot")})
	if _, err := bad.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("restoring garbage: %v", err)
	}

	restore, err := op(f).RestoreSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for len(snap) > 0 {
		n := min(len(snap), 100)
		if err := restore.Send(&svcregv1.RestoreSnapshotRequest{Data: snap[:n]}); err != nil {
			t.Fatal(err)
		}
		snap = snap[n:]
	}
	resp, err := restore.CloseAndRecv()
	if err != nil {
		t.Fatalf("restore through a follower: %v", err)
	}
	if resp.GetRevision() <= dropped.GetResourceVersion() {
		t.Errorf("restored at revision %d, not past %d", resp.GetRevision(), dropped.GetResourceVersion())
	}
	if _, err := st.Recv(); status.Code(err) != codes.OutOfRange {
		t.Errorf("watch across the restore: %v, want OUT_OF_RANGE", err)
	}
	c.converged(resp.GetRevision())
	for _, m := range c.members {
		if _, err := getInstance(m, "kept", "stale", resp.GetRevision()); err != nil {
			t.Errorf("%s lost the snapshot's instance: %v", m.id, err)
		}
		if _, err := getInstance(m, "dropped", "stale", resp.GetRevision()); status.Code(err) != codes.NotFound {
			t.Errorf("%s kept the instance written after the snapshot: %v", m.id, err)
		}
	}
	// Writes go on after the restore, at later revisions.
	if after := f.mustCreateInstance(t, webInst("after")); after.GetResourceVersion() <= resp.GetRevision() {
		t.Errorf("write after the restore at revision %d", after.GetResourceVersion())
	}
}

// TestFakeJoinsLeaveTheClusterWritable: servers that ask to join and never
// show up are non-voters, so they never count toward quorum (writes go
// on), and autopilot removes them once they stay unreachable.
func TestFakeJoinsLeaveTheClusterWritable(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	conn, err := leader.node.PeerConn(leader.PeerAddr())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := clusterv1.NewPeerServiceClient(conn).Join(context.Background(), &clusterv1.JoinRequest{
			Id: fmt.Sprintf("fake-%d", i), PeerAddress: fmt.Sprintf("fake-%d", i)})
		if err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	servers, _ := leader.node.Servers()
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	if len(servers) != 6 || voters != 3 {
		t.Fatalf("after three joins: %d servers, %d voters; want 6 and 3", len(servers), voters)
	}
	leader.mustCreateService(t, webSvc())
	for i := range 20 {
		leader.mustCreateInstance(t, webInst(fmt.Sprintf("after-%d", i)))
	}
	waitFor(t, "autopilot to remove the servers that never came", 30*time.Second, func() bool {
		servers, err := c.waitLeader().node.Servers()
		return err == nil && len(servers) == 3
	})
}

// TestCancelledWriteReturnsAtOnce: a write whose caller gives up (a
// cancelled or expired context) returns at once with the caller's error,
// whether it waits on a commit that cannot happen (no quorum) or on a
// leader that is not there; before, it held its handler for the whole
// 7 s hold.
func TestCancelledWriteReturnsAtOnce(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	for _, f := range c.followers(leader) {
		c.partition(f) // no quorum: nothing commits, then no leader
	}
	for _, tt := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want codes.Code
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, codes.Canceled},
		{"a deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, codes.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			began := time.Now()
			_, err := leader.client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{Name: "x", Namespace: "shop", Ports: []*svcregv1.ServicePort{{Port: 80}}}})
			if status.Code(err) != tt.want {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			// The handler returned too: the server has no write left waiting.
			waitFor(t, "the handler to return", cluster.DefaultHold/2, func() bool { return leader.inFlight.Count("127.0.0.1") == 0 })
			if took := time.Since(began); took >= cluster.DefaultHold {
				t.Errorf("returned after %v, the whole hold", took)
			}
		})
	}
}
