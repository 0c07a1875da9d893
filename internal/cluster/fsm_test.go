// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/store"
)

func newStore(t testing.TB) *store.Store {
	t.Helper()
	ips, err := store.ParseIPRange("10.96.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	ports, err := store.ParsePortRange("30000-30099")
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.New(store.Config{ServiceIPs: ips, NodePorts: ports})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomLog builds a Raft log of n entries mixing every kind of command,
// with some that fail (unknown objects, stale preconditions, duplicates of
// request ids), as a real log has. Entry timestamps advance one second
// each, so request ids age out of the dedup window along the way.
func randomLog(seed uint64, n int) []*raft.Log {
	rng := rand.New(rand.NewPCG(seed, seed))
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var logs []*raft.Log
	var ids []string
	apps := []string{"web", "api", "db"}
	for i := range n {
		c := &storev1.Command{Time: timestamppb.New(start.Add(time.Duration(i) * time.Second))}
		app := apps[rng.IntN(len(apps))]
		inst := fmt.Sprintf("%s-%d", app, rng.IntN(8))
		c.Owner = []string{"", "tok-a", "tok-b"}[rng.IntN(3)]
		c.RequireOwner = c.Owner != "" && rng.IntN(2) == 0
		switch k := rng.IntN(12); k {
		case 0:
			svc := &svcregv1.Service{
				Name: app, Namespace: "shop", Uid: fmt.Sprintf("uid-%d", i),
				Selector: map[string]string{"app": app},
				Ports:    []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}},
			}
			if rng.IntN(2) == 0 {
				svc.Type = svcregv1.ServiceType_SERVICE_TYPE_NODE_PORT
			}
			c.Op = &storev1.Command_CreateService{CreateService: &svcregv1.CreateServiceRequest{Service: svc}}
		case 1:
			c.Op = &storev1.Command_UpdateService{UpdateService: &svcregv1.UpdateServiceRequest{
				Service:    &svcregv1.Service{Name: app, Namespace: "shop", PublishNotReadyAddresses: rng.IntN(2) == 0, Scheduler: []string{"rr", "wlc", "mh"}[rng.IntN(3)]},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"publish_not_ready_addresses", "scheduler"}},
			}}
		case 2:
			c.Op = &storev1.Command_DeleteService{DeleteService: &svcregv1.DeleteServiceRequest{Namespace: "shop", Name: app}}
		case 3, 4, 5:
			c.Op = &storev1.Command_CreateInstance{CreateInstance: &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
				Name: inst, Namespace: "shop", Uid: fmt.Sprintf("uid-%d", i), Ip: fmt.Sprintf("10.0.%d.%d", rng.IntN(4), 1+rng.IntN(200)),
				Labels: map[string]string{"app": app}, Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: 8443}},
				TtlSeconds: int32(rng.IntN(2) * 30),
			}}}
		case 6, 7:
			ready := rng.IntN(2) == 0
			c.Op = &storev1.Command_UpdateInstance{UpdateInstance: &svcregv1.UpdateInstanceRequest{
				Instance:   &svcregv1.Instance{Name: inst, Namespace: "shop", Ready: &ready, ResourceVersion: int64(rng.IntN(3)) * int64(i)},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ready"}},
			}}
		case 8:
			c.Op = &storev1.Command_DeleteInstance{DeleteInstance: &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: inst}}
		case 9:
			c.Op = &storev1.Command_ExpireInstances{ExpireInstances: &storev1.ExpireInstances{Instances: []*storev1.InstanceRef{
				{Namespace: "shop", Name: inst, ResourceVersion: int64(rng.IntN(i + 1))},
			}}}
		case 10:
			c.Op = &storev1.Command_CreateToken{CreateToken: token(fmt.Sprintf("tok-%d", rng.IntN(4)), svcregv1.Role(1+rng.IntN(4)))}
		case 11:
			c.Op = &storev1.Command_DeleteToken{DeleteToken: &storev1.DeleteToken{Accessor: fmt.Sprintf("tok-%d", rng.IntN(4))}}
		}
		switch {
		case len(ids) > 0 && rng.IntN(10) == 0:
			c.RequestId = ids[rng.IntN(len(ids))] // a retry
		default:
			c.RequestId = fmt.Sprintf("req-%d", i)
			ids = append(ids, c.RequestId)
		}
		b, err := encodeCommand(c)
		if err != nil {
			panic(err)
		}
		logs = append(logs, &raft.Log{Term: 1, Type: raft.LogCommand, Data: b})
		if rng.IntN(20) == 0 { // configuration and no-op entries take indexes too
			logs = append(logs, &raft.Log{Term: 1, Type: raft.LogNoop})
		}
	}
	for j, l := range logs {
		l.Index = uint64(j + 1)
	}
	return logs
}

// token is a stored token with a role in namespace shop.
func token(accessor string, role svcregv1.Role) *storev1.StoredToken {
	sum := sha256.Sum256([]byte("secret of " + accessor))
	return &storev1.StoredToken{SecretSha256: sum[:], Token: &svcregv1.Token{Accessor: accessor,
		Roles: []*svcregv1.RoleBinding{{Role: role, Namespaces: []string{"shop"}}}}}
}

func dump(t testing.TB, s *store.Store) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// describe renders an apply response for comparison.
func describe(r any) string {
	resp, ok := r.(applyResponse)
	if !ok {
		return fmt.Sprintf("%v", r)
	}
	if resp.err != nil {
		return "error: " + resp.err.Error()
	}
	opts := proto.MarshalOptions{Deterministic: true}
	var parts []string
	for _, m := range []proto.Message{resp.res.Service, resp.res.Instance} {
		b, _ := opts.Marshal(m)
		parts = append(parts, fmt.Sprintf("%x", b))
	}
	return fmt.Sprintf("rev %d %v eps %d", resp.res.Revision, parts, len(resp.res.Endpoints))
}

// TestFSMDeterminism replays one log into several stores, one entry at a
// time and in batches of every size raft may hand over: the dumps and the
// answers must be identical, whatever the wall clock says meanwhile.
func TestFSMDeterminism(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			logs := randomLog(seed, 1500)

			sequential := &fsm{store: newStore(t)}
			wantEvents := recordEvents(sequential.store)
			var want []string
			for _, l := range logs {
				want = append(want, describe(sequential.Apply(l)))
			}
			wantDump := dump(t, sequential.store)
			if sequential.store.Revision() == 0 || len(*wantEvents) < len(logs)/4 {
				t.Fatalf("the log changed too little: revision %d, %d events", sequential.store.Revision(), len(*wantEvents))
			}

			for _, batch := range []int{1, 7, 64, len(logs)} {
				batched := &fsm{store: newStore(t)}
				gotEvents := recordEvents(batched.store)
				var got []string
				for i := 0; i < len(logs); i += batch {
					for _, r := range batched.ApplyBatch(logs[i:min(i+batch, len(logs))]) {
						got = append(got, describe(r))
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("batch %d: answers differ (-sequential +batched):\n%s", batch, diff)
				}
				if diff := cmp.Diff(wantDump, dump(t, batched.store)); diff != "" {
					t.Errorf("batch %d: stores differ (-sequential +batched):\n%s", batch, diff)
				}
				if diff := cmp.Diff(*wantEvents, *gotEvents); diff != "" {
					t.Errorf("batch %d: change feeds differ (-sequential +batched):\n%s", batch, diff)
				}
			}
		})
	}
}

// recordEvents follows a store's change feed, one line per event.
func recordEvents(s *store.Store) *[]string {
	var out []string
	s.OnCommit(func(events []store.Event) {
		for _, e := range events {
			var before, after []byte
			if e.Before != nil {
				before, _ = proto.MarshalOptions{Deterministic: true}.Marshal(e.Before)
			}
			if e.After != nil {
				after, _ = proto.MarshalOptions{Deterministic: true}.Marshal(e.After)
			}
			out = append(out, fmt.Sprintf("%d %d %d %s/%s/%s %x %x", e.Revision, e.Type, e.Kind, e.Namespace, e.Service, e.Name, before, after))
		}
	})
	return &out
}

// TestFSMRevisionIsIndex: each change is stamped with its entry's index.
func TestFSMRevisionIsIndex(t *testing.T) {
	f := &fsm{store: newStore(t)}
	for _, l := range randomLog(9, 300) {
		r := f.Apply(l)
		resp, ok := r.(applyResponse)
		if !ok || resp.err != nil {
			continue
		}
		if resp.res.Revision > int64(l.Index) {
			t.Fatalf("entry %d answered revision %d", l.Index, resp.res.Revision)
		}
		if f.store.Revision() > int64(l.Index) {
			t.Fatalf("after entry %d the store is at %d", l.Index, f.store.Revision())
		}
	}
}

// TestFSMSnapshotRestore: a snapshot taken mid-log and restored into a
// fresh store, then the rest of the log applied, gives the same store as
// applying the whole log.
func TestFSMSnapshotRestore(t *testing.T) {
	logs := randomLog(4, 1000)
	whole := &fsm{store: newStore(t)}
	for _, l := range logs {
		whole.Apply(l)
	}

	first := &fsm{store: newStore(t)}
	for _, l := range logs[:500] {
		first.Apply(l)
	}
	snap, err := first.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot was taken must not leak into it.
	for _, l := range logs[500:] {
		first.Apply(l)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	restored := &fsm{store: newStore(t)}
	var hookRev int64
	restored.store.OnRestore(func(rev int64) { hookRev = rev })
	if err := restored.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	if hookRev != restored.store.Revision() || hookRev == 0 {
		t.Errorf("restore hook got revision %d, store is at %d", hookRev, restored.store.Revision())
	}
	for _, l := range logs[500:] {
		restored.Apply(l)
	}
	if diff := cmp.Diff(dump(t, whole.store), dump(t, restored.store)); diff != "" {
		t.Errorf("snapshot + tail differs from the whole log (-whole +restored):\n%s", diff)
	}
	if diff := cmp.Diff(dump(t, whole.store), dump(t, first.store)); diff != "" {
		t.Errorf("the store changed while its snapshot was persisted:\n%s", diff)
	}
}

// TestPrepareRestore: a user restore moves the revision forward, keeps
// the restoring cluster's tokens (not the snapshot's) and everything else
// of the snapshot.
func TestPrepareRestore(t *testing.T) {
	f := &fsm{store: newStore(t)}
	for _, l := range randomLog(5, 200) {
		f.Apply(l)
	}
	var b bytes.Buffer
	if _, err := f.store.Snapshot().WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	kept := token("kept", svcregv1.Role_ROLE_OPERATOR)
	if _, err := s.Apply(&storev1.Command{Op: &storev1.Command_CreateToken{CreateToken: kept}}); err != nil {
		t.Fatal(err)
	}
	var moved bytes.Buffer
	if _, err := s.PrepareRestore(&moved, bytes.NewReader(b.Bytes()), 1_000_000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Restore(bytes.NewReader(moved.Bytes())); err != nil {
		t.Fatal(err)
	}
	if s.Revision() != 1_000_000 {
		t.Errorf("revision %d, want 1000000", s.Revision())
	}
	want, _ := f.store.Read().ListInstances(store.ListQuery{Namespace: meta.AllNamespaces})
	got, _ := s.Read().ListInstances(store.ListQuery{Namespace: meta.AllNamespaces})
	if len(want.Items) != len(got.Items) || len(want.Items) == 0 {
		t.Errorf("restored %d instances, want %d", len(got.Items), len(want.Items))
	}
	if tokens, _ := s.Read().Tokens(); len(tokens) != 1 || tokens[0].GetToken().GetAccessor() != "kept" || !s.Read().TokensBootstrapped() {
		t.Errorf("tokens after the restore: %v, want only the restoring store's", tokens)
	}

	for _, bad := range [][]byte{nil, []byte("svcreg-store-snapshot v1\n"), []byte("hello")} {
		if _, err := s.PrepareRestore(io.Discard, bytes.NewReader(bad), 7); err == nil {
			t.Errorf("PrepareRestore(%q) accepted a broken snapshot", bad)
		}
	}
}

// TestFSMRejectsUnknownEntries: an unknown entry type stops the server
// unless it is marked skippable.
func TestFSMRejectsUnknownEntries(t *testing.T) {
	f := &fsm{store: newStore(t)}
	if r := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{ignoreUnknown | 5, 1, 2}}); r != nil {
		t.Errorf("skippable entry answered %v", r)
	}
	defer func() {
		if recover() == nil {
			t.Error("an unknown entry type did not stop the state machine")
		}
	}()
	f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{9, 1, 2}})
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }
func (s *memSink) reader() *readCloser {
	return &readCloser{Reader: bytes.NewReader(s.Bytes())}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
