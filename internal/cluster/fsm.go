// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	"github.com/svcreg/svcreg/internal/store"
)

// Log entries are [1 byte type | protobuf]. A type with ignoreUnknown set
// may be skipped by a server too old to know it (rolling upgrades); any
// other unknown type stops the server rather than diverge from the others.
const (
	entryStoreCommand byte = 1
	ignoreUnknown     byte = 0x80
)

func encodeCommand(cmd *storev1.Command) ([]byte, error) {
	if store.ValidateOnly(cmd) {
		return nil, errors.New("a validate-only (dry run) command must never become a log entry")
	}
	b, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	return append([]byte{entryStoreCommand}, b...), nil
}

// fsm is the Raft state machine: the store. Applying is deterministic: the
// revision is the entry's index, time and ids come in the command.
type fsm struct {
	store *store.Store
}

// applyResponse is what Apply returns through raft's ApplyFuture.
type applyResponse struct {
	res *store.Result
	err error
}

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in order (raft.BatchingFSM): the
// store runs the commands of a batch in shared transactions, which is
// most of what batching buys under load.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	entries := make([]store.Entry, 0, len(logs))
	at := make([]int, 0, len(logs)) // entries[k] answers logs[at[k]]
	for i, l := range logs {
		cmd := decode(l)
		if cmd == nil {
			continue
		}
		entries = append(entries, store.Entry{Index: int64(l.Index), Command: cmd})
		at = append(at, i)
	}
	for k, o := range f.store.ApplyBatch(entries) {
		out[at[k]] = applyResponse{o.Result, o.Err}
	}
	return out
}

// decode returns the store command an entry carries, or nil for entries
// that are not commands (configuration, no-ops, skippable types).
func decode(l *raft.Log) *storev1.Command {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	switch l.Data[0] {
	case entryStoreCommand:
		cmd := &storev1.Command{}
		if err := proto.Unmarshal(l.Data[1:], cmd); err != nil {
			panic(fmt.Sprintf("svcreg: raft entry %d: corrupt command: %v", l.Index, err))
		}
		return cmd
	default:
		if l.Data[0]&ignoreUnknown != 0 {
			return nil
		}
		panic(fmt.Sprintf("svcreg: raft entry %d: unknown entry type %d: upgrade this server", l.Index, l.Data[0]))
	}
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) { return fsmSnapshot{f.store.Snapshot()}, nil }

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	_, err := f.store.Restore(rc)
	return err
}

type fsmSnapshot struct{ snap *store.Snapshot }

// Persist streams the store's snapshot; it reads one memdb snapshot, so
// Apply goes on meanwhile.
func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}
