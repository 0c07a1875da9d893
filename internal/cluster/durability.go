// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// What this file guards against, and how (docs/durability.md):
//
//   - A log that lost entries (a segment zeroed, truncated or deleted,
//     after a clean stop or a crash): the log store records durably, with
//     every append, the highest index it has written (the stored mark,
//     storedmark.go). At start the log and the newest snapshot must reach
//     it, every entry in the log must read back, and the log must start
//     where a snapshot ends. Otherwise a server alone refuses to start,
//     naming the file and the entries lost, rather than come up with a
//     silently smaller registry; a cluster member whose peers can heal it
//     discards its data and copies the state from them (heal.go).
//   - A full disk: writes are refused with DISK_FULL while the data dir's
//     file system has less free space than a reserve, and resume by
//     themselves once space is freed. If the log store fails a write all
//     the same, the server stops with a message saying why (Failed), so a
//     supervisor restarts it: the log is never appended to again after a
//     failed write.

// dataDirs are a data dir's Raft parts.
func walDir(dataDir string) string  { return filepath.Join(dataDir, "raft", "wal") }
func raftDir(dataDir string) string { return filepath.Join(dataDir, "raft") }

// openLog opens the Raft log and stable store (raft-wal) in the data dir.
func openLog(dataDir string, segmentSize int) (*wal.WAL, error) {
	dir := walDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if segmentSize <= 0 {
		segmentSize = wal.DefaultSegmentSize
	}
	w, err := wal.Open(dir, wal.WithSegmentSize(segmentSize))
	if err != nil {
		return nil, fmt.Errorf("the Raft log in %s cannot be opened: %w; if it is damaged, start with --rejoin to discard it and copy the state from the cluster's other servers, or restore a snapshot", dir, err)
	}
	return w, nil
}

// openStoredMark opens the data dir's stored mark and returns the index
// the log must reach. A data dir without one is new (an empty log: the
// mark is made at 0) or was written by a version that recorded the
// applied index about once a second instead (that index is what the log
// must reach, and the mark is made once the log passed the check: make
// it with createMark).
func openStoredMark(dataDir string, logs raft.LogStore, stable raft.StableStore) (*storedMark, uint64, error) {
	m, err := openMark(dataDir)
	if err == nil {
		return m, m.index, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, 0, err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return nil, 0, err
	}
	legacy, _ := stable.GetUint64(legacyAppliedKey) // 0 when never recorded
	if last > 0 && legacy == 0 {
		return nil, 0, fmt.Errorf("%w: the Raft log in %s holds entries but the stored-index record %s is missing, so the log cannot be checked; %s",
			errDataLoss, walDir(dataDir), markPath(dataDir), recoveryHint)
	}
	return nil, legacy, nil
}

// legacyAppliedKey is where earlier versions recorded the applied index.
var legacyAppliedKey = []byte("svcreg_applied_index")

const recoveryHint = "start with --rejoin to discard this server's data and copy the state from the cluster's other servers (a server started with --join does this by itself when one of them leads), or restore a snapshot (svcreg snapshot restore)"

// checkLog verifies that the log and the snapshots hold everything this
// server ever acknowledged (up to claimed, the stored mark); see the top
// of this file.
func checkLog(dataDir string, logs raft.LogStore, snaps raft.SnapshotStore, claimed uint64) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return err
	}
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("listing snapshots in %s: %w", raftDir(dataDir), err)
	}
	var snapIndex uint64
	if len(metas) > 0 {
		snapIndex = metas[0].Index // newest first
	}
	if last > 0 && first > snapIndex+1 {
		snapDir := filepath.Join(raftDir(dataDir), "snapshots")
		covered := fmt.Sprintf("there is no snapshot in %s", snapDir)
		if snapIndex > 0 {
			covered = fmt.Sprintf("the newest snapshot in %s ends at %d", snapDir, snapIndex)
		}
		return &lossError{first: snapIndex + 1, last: first - 1, msg: fmt.Sprintf("the Raft log in %s starts at index %d but %s: entries %d-%d are lost (a deleted snapshot or log segment)",
			walDir(dataDir), first, covered, snapIndex+1, first-1)}
	}
	if reach := max(last, snapIndex); claimed > reach {
		return &lossError{first: reach + 1, last: claimed, msg: fmt.Sprintf("this server had written up to Raft index %d, but its log (%s) and snapshots end at %d: entries %d-%d are lost (a damaged, zeroed or truncated segment: %s)",
			claimed, walDir(dataDir), reach, reach+1, claimed, segmentOf(dataDir, reach+1))}
	}
	if last == 0 {
		return nil
	}
	// Every entry Raft will replay at start (those after the newest
	// snapshot) must read back. Older ones, kept for lagging followers, are
	// not replayed; one that cannot be read makes the leader send a
	// snapshot instead.
	var entry raft.Log
	for i := max(first, snapIndex+1); i <= last; i++ {
		if err := logs.GetLog(i, &entry); err != nil || entry.Index != i {
			if err == nil {
				err = fmt.Errorf("it holds index %d", entry.Index)
			}
			return &lossError{first: i, last: max(last, claimed), msg: fmt.Sprintf("Raft log entry %d in %s cannot be read (%v): entries %d-%d are unreadable",
				i, segmentOf(dataDir, i), err, i, last)}
		}
	}
	return nil
}

// lossError is a data dir that lost entries first-last.
type lossError struct {
	first, last uint64
	msg         string
	peers       []string // the other servers of the last configuration the data dir holds
}

func (e *lossError) Error() string {
	return fmt.Sprintf("%v: %s; %s", errDataLoss, e.msg, recoveryHint)
}
func (e *lossError) Unwrap() error { return errDataLoss }

// errDataLoss marks a refusal to start over lost data.
var errDataLoss = errors.New("refusing to start: data lost")

// segmentOf names the raft-wal segment file that holds (or would hold) a
// log index: the one with the greatest base index not above it.
func segmentOf(dataDir string, index uint64) string {
	dir := walDir(dataDir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	type seg struct {
		base uint64
		path string
	}
	var segs []seg
	for _, f := range files {
		base, err := strconv.ParseUint(strings.SplitN(filepath.Base(f), "-", 2)[0], 10, 64)
		if err == nil {
			segs = append(segs, seg{base, f})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].base < segs[j].base })
	name := dir
	for _, s := range segs {
		if s.base <= index {
			name = s.path
		}
	}
	return name
}

// checkRestoredSnapshot fails when Raft could not restore the newest
// snapshot (it falls back to an older one, or none, and says so only in a
// log line): the state would be older than what the log continues from.
func checkRestoredSnapshot(dataDir string, r *raft.Raft, snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	restored, _ := strconv.ParseUint(r.Stats()["last_snapshot_index"], 10, 64)
	if restored < metas[0].Index {
		return fmt.Errorf("%w: the newest snapshot in %s (%s, index %d) could not be read: it is damaged; move it aside to start from the one before it, or start with --rejoin",
			errDataLoss, filepath.Join(raftDir(dataDir), "snapshots"), metas[0].ID, metas[0].Index)
	}
	return nil
}

// discardData moves a data dir's Raft state aside (--rejoin): the server
// then starts empty and copies the cluster's state from the leader.
func discardData(dataDir string) (string, error) {
	dir := raftDir(dataDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	aside := fmt.Sprintf("%s.discarded-%s", dir, time.Now().UTC().Format("20060102T150405Z"))
	return aside, os.Rename(dir, aside)
}

// freeBytes is the space left for this user on dir's file system.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// guardedLog is the Raft log store as Raft sees it. It records the stored
// mark (storedmark.go) after every append and before a deletion of the
// log's tail, and it has a fuse: after a failed append (or a failed mark)
// it calls failed once, and the server stops (raft-wal's segment is sealed
// after a failed write: appending again would flap the leader forever).
//
// It must keep the log store's optional interfaces: Raft asks for
// raft.MonotonicLogStore, and with raft-wal (which refuses a gap in the
// indexes) it then removes the whole log after installing a snapshot
// instead of leaving a gap before the snapshot's index. Hiding it made
// every restore on a data dir fail its next append.
type guardedLog struct {
	raft.LogStore
	failed func(error)
	blown  atomic.Bool

	mu   sync.Mutex // held across an append or a deletion and its mark
	mark *storedMark
}

var _ raft.MonotonicLogStore = (*guardedLog)(nil)

// IsMonotonic implements raft.MonotonicLogStore: raft-wal's answer.
func (g *guardedLog) IsMonotonic() bool {
	m, ok := g.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (g *guardedLog) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

func (g *guardedLog) StoreLogs(logs []*raft.Log) error {
	if g.blown.Load() {
		return errLogFailed
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.LogStore.StoreLogs(logs)
	if err == nil && len(logs) > 0 {
		if err = g.mark.set(logs[len(logs)-1].Index); err != nil {
			err = fmt.Errorf("recording the stored index in %s: %w", g.mark.f.Name(), err)
		}
	}
	if err != nil && g.blown.CompareAndSwap(false, true) {
		g.failed(err)
	}
	return err
}

// DeleteRange lowers the mark first when the range reaches the log's end
// (a follower dropping entries a new leader replaced, or the whole log
// after a snapshot is installed): the mark must never claim an entry the
// log no longer has. Such entries were never committed, or a snapshot
// covers them.
func (g *guardedLog) DeleteRange(lo, hi uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if last, err := g.LogStore.LastIndex(); err == nil && hi >= last && lo > 0 && g.mark.index > lo-1 {
		if err := g.mark.set(lo - 1); err != nil {
			return fmt.Errorf("recording the stored index in %s: %w", g.mark.f.Name(), err)
		}
	}
	return g.LogStore.DeleteRange(lo, hi)
}

var errLogFailed = errors.New("the Raft log failed a write; the server is stopping")
