package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// What this file guards against, and how (docs/durability.md):
//
//   - A log that lost entries (a segment zeroed, truncated or deleted): the
//     server records, in the stable store and about once a second, the
//     index its state machine has applied. At start the log and the newest
//     snapshot must reach it, every entry in the log must read back, and
//     the log must start where a snapshot ends. Otherwise the server
//     refuses to start, naming the file and the entries lost, rather than
//     come up with a silently smaller registry.
//   - A full disk: writes are refused with DISK_FULL while the data dir's
//     file system has less free space than a reserve, and resume by
//     themselves once space is freed. If the log store fails a write all
//     the same, the server stops with a message saying why (Failed), so a
//     supervisor restarts it: the log is never appended to again after a
//     failed write.

// appliedKey is the stable-store key of the applied-index watermark.
var appliedKey = []byte("svcreg_applied_index")

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

// checkLog verifies that the log and the snapshots hold everything this
// server ever applied; see the top of this file.
func checkLog(dataDir string, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore) error {
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
	applied, _ := stable.GetUint64(appliedKey) // 0 when never recorded
	hint := "start with --rejoin to discard this server's data and copy the state from the cluster's other servers, or restore a snapshot (svcreg snapshot restore)"
	if last > 0 && first > snapIndex+1 {
		snapDir := filepath.Join(raftDir(dataDir), "snapshots")
		covered := fmt.Sprintf("there is no snapshot in %s", snapDir)
		if snapIndex > 0 {
			covered = fmt.Sprintf("the newest snapshot in %s ends at %d", snapDir, snapIndex)
		}
		return fmt.Errorf("%w: the Raft log in %s starts at index %d but %s: entries %d-%d are lost (a deleted snapshot or log segment); %s",
			errDataLoss, walDir(dataDir), first, covered, snapIndex+1, first-1, hint)
	}
	if reach := max(last, snapIndex); applied > reach {
		return fmt.Errorf("%w: this server had applied up to Raft index %d, but its log (%s) and snapshots end at %d: entries %d-%d are lost (a truncated or zeroed segment: %s); %s",
			errDataLoss, applied, walDir(dataDir), reach, reach+1, applied, segmentOf(dataDir, reach+1), hint)
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
			return fmt.Errorf("%w: Raft log entry %d in %s cannot be read (%v): entries %d-%d are unreadable; %s",
				errDataLoss, i, segmentOf(dataDir, i), err, i, last, hint)
		}
	}
	return nil
}

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

// guardedLog is the Raft log with a fuse: after a failed append it calls
// failed once, and the server stops (raft-wal's segment is sealed after a
// failed write: appending again would flap the leader forever).
type guardedLog struct {
	raft.LogStore
	failed func(error)
	blown  atomic.Bool
}

func (g *guardedLog) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

func (g *guardedLog) StoreLogs(logs []*raft.Log) error {
	if g.blown.Load() {
		return errLogFailed
	}
	err := g.LogStore.StoreLogs(logs)
	if err != nil && g.blown.CompareAndSwap(false, true) {
		g.failed(err)
	}
	return err
}

var errLogFailed = errors.New("the Raft log failed a write; the server is stopping")
