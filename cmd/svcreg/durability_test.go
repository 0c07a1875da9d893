// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/reason"
)

// writeInstances creates n instances through p, 16 at a time.
func writeInstances(t testing.TB, p *proc, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				inst := webInstance(fmt.Sprintf("%s-%d", prefix, i))
				if _, err := p.registry().CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// segments lists a data dir's raft-wal segment files.
func segments(t testing.TB, dataDir string) []string {
	files, err := filepath.Glob(filepath.Join(dataDir, "raft", "wal", "*.wal"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no log segments in %s: %v", dataDir, err)
	}
	return files
}

// usedBytes is how much of a (preallocated) segment file holds data: up to
// its last non-zero byte before the first MiB of zeros. The damage the
// tests do is a few KiB at most, and reading all of a 64 MiB preallocated
// segment costs seconds under the race detector.
func usedBytes(t *testing.T, path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var used int64
	chunk := make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(chunk)) {
		n, err := f.ReadAt(chunk, off)
		last := n - 1
		for last >= 0 && chunk[last] == 0 {
			last--
		}
		if last < 0 || err != nil {
			if last >= 0 {
				used = off + int64(last) + 1
			}
			break
		}
		used = off + int64(last) + 1
	}
	if used == 0 {
		t.Fatalf("%s is empty", path)
	}
	return used
}

// TestDamagedDataDirRefusesToStart: a server whose log or snapshots lost
// acknowledged entries never starts as if nothing happened; it exits,
// saying which file and which entries, and how to recover.
func TestDamagedDataDirRefusesToStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		flags  []string
		damage func(t *testing.T, dataDir string) string // returns the file to be named
		want   []string
	}{
		{"zeroed block in the tail segment", nil, func(t *testing.T, dir string) string {
			seg := segments(t, dir)[len(segments(t, dir))-1]
			f, err := os.OpenFile(seg, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 4096), usedBytes(t, seg)/2); err != nil {
				t.Fatal(err)
			}
			return seg
		}, []string{"are lost", "--rejoin"}},
		{"truncated segment", nil, func(t *testing.T, dir string) string {
			seg := segments(t, dir)[len(segments(t, dir))-1]
			if err := os.Truncate(seg, usedBytes(t, seg)/2); err != nil {
				t.Fatal(err)
			}
			return seg
		}, []string{"are lost"}},
		{"deleted segment", nil, func(t *testing.T, dir string) string {
			seg := segments(t, dir)[len(segments(t, dir))-1]
			if err := os.Remove(seg); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "raft", "wal")
		}, []string{"are lost"}},
		{"deleted snapshot dir", []string{"--raft-snapshot-threshold", "200", "--raft-snapshot-interval", "200ms", "--raft-trailing-logs", "10"},
			func(t *testing.T, dir string) string {
				snaps := filepath.Join(dir, "raft", "snapshots")
				if entries, _ := os.ReadDir(snaps); len(entries) == 0 {
					t.Fatal("no snapshot was taken")
				}
				if err := os.RemoveAll(snaps); err != nil {
					t.Fatal(err)
				}
				return snaps
			}, []string{"are lost", "no snapshot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := startProc(t, "n1", append([]string{"--data-dir", dir}, tt.flags...)...)
			p.waitReady(20 * time.Second)
			if _, err := p.registry().CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
				t.Fatal(err)
			}
			writeInstances(t, p, "web", 2000)
			if len(tt.flags) > 0 {
				poll(t, "a Raft snapshot", 20*time.Second, func() bool {
					entries, _ := os.ReadDir(filepath.Join(dir, "raft", "snapshots"))
					return len(entries) > 0
				})
				writeInstances(t, p, "more", 300) // entries past the snapshot
			}
			p.term()
			file := tt.damage(t, dir)

			p.start()
			log, ok := p.exited(60 * time.Second)
			if !ok {
				t.Fatalf("the damaged server kept running")
			}
			last := log[strings.LastIndex(log, "--- start"):]
			for _, want := range append(tt.want, file) {
				if !strings.Contains(last, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, lastLines(last, 10))
				}
			}
		})
	}
}

// TestRejoin: a cluster member started with --rejoin discards its data,
// copies the state from the leader as a non-voter, and is promoted once
// caught up. (A member whose data dir is damaged does the same by itself
// when a peer leads: TestCrashedMemberHeals.)
func TestRejoin(t *testing.T) {
	t.Parallel()
	procs := startThree(t, "--raft-timeout-scale", "0.3")
	leader := leaderOf(t, procs)
	if _, err := leader.registry().CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
		t.Fatal(err)
	}
	writeInstances(t, leader, "web", 500)
	var victim *proc
	for _, p := range procs {
		if p != leader {
			victim = p
		}
	}
	victim.term()
	victim.args = append(victim.args, "--rejoin", "--join", leader.peer)
	victim.restart()
	victim.waitReady(60 * time.Second)
	resp, err := victim.registry().ListEndpoints(context.Background(), &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "web", Consistency: "stale"})
	if err != nil || len(resp.GetEndpoints()) != 500 {
		t.Fatalf("the rejoined member has %d endpoints (%v), want 500", len(resp.GetEndpoints()), err)
	}
	poll(t, "the rejoined member to be a voter again", 60*time.Second, func() bool {
		peer, err := victim.self(context.Background())
		return err == nil && peer.GetVoter()
	})
}

func argIndex(args []string, flag string) int {
	for i, a := range args {
		if a == flag {
			return i
		}
	}
	return -1
}

// TestDiskFull runs a server on a small tmpfs: with less than the reserve
// free, writes fail with DISK_FULL (no leader flapping); once space is
// freed they succeed again within 5 s. Filling the disk past the reserve
// from outside makes the server stop with a clear message instead.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs (CI runs as root)")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	dataDir := filepath.Join(mnt, "data")
	p := startProc(t, "n1", "--data-dir", dataDir, "--min-free-disk", "16MiB", "--raft-segment-size", "1MiB")
	p.waitReady(20 * time.Second)
	ctx := context.Background()
	if _, err := p.registry().CreateService(ctx, &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
		t.Fatal(err)
	}
	writeInstances(t, p, "before", 100)

	filler := filepath.Join(mnt, "filler")
	fill(t, filler, 8<<20) // leave 8 MiB: under the 16 MiB reserve
	var last error
	attempt := 0
	poll(t, "writes to be refused", 10*time.Second, func() bool {
		attempt++ // the guard looks once a second: the first writes may pass
		_, last = p.registry().CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: webInstance(fmt.Sprintf("during-%d", attempt))})
		return last != nil
	})
	if status.Code(last) != codes.ResourceExhausted || reason.Of(last) != reason.DiskFull {
		t.Fatalf("a write on a full disk: %v, want RESOURCE_EXHAUSTED DISK_FULL", last)
	}
	if !p.ready() {
		t.Errorf("a full disk made the server unready: reads should go on")
	}
	os.Remove(filler)
	freed := time.Now()
	poll(t, "writes to resume", 5*time.Second, func() bool {
		_, err := p.registry().CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: webInstance("after")})
		return err == nil
	})
	t.Logf("writes resumed %v after space was freed", time.Since(freed).Round(10*time.Millisecond))

	// A disk full past what the reserve protects (here: no reserve): the
	// next log segment cannot be created, the log store fails a write, and
	// the server stops rather than flap.
	p.term()
	p.pin("--min-free-disk", "1")
	fill(t, filler, 512<<10) // less than one 1 MiB segment
	p.restart()
	p.waitReady(20 * time.Second)
	go writeUntilError(p, "overflow")
	log, ok := p.exited(60 * time.Second)
	if !ok {
		t.Fatal("the server kept running on a full disk")
	}
	if !strings.Contains(log, "svcreg stops so that a supervisor restarts it") {
		t.Errorf("the server stopped without saying why:\n%s", lastLines(log, 10))
	}
}

// writeUntilError writes instances, sixteen at a time (so that the log
// fills in seconds even on a busy machine), until one fails other than by
// its timeout (bounded).
func writeUntilError(p *proc, prefix string) {
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < 100_000 && !failed.Load(); i += 16 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := p.registry().CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: webInstance(fmt.Sprintf("%s-%d", prefix, i))})
				cancel()
				// A write that timed out on a busy machine is no verdict: go on.
				if err != nil && status.Code(err) != codes.DeadlineExceeded {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
}

// fill writes a file until the file system has at most leave bytes free.
func fill(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		free, err := freeSpace(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if free <= leave {
			return
		}
		n := min(int64(len(chunk)), free-leave)
		if _, err := f.Write(chunk[:n]); err != nil {
			return // full
		}
	}
}

func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// TestFullLeaderHandsOver: a leader whose disk is below its reserve
// refuses writes; it hands leadership to a server with room, so the
// cluster's writes go on. Before, it stayed leader and refused every
// write of the cluster.
func TestFullLeaderHandsOver(t *testing.T) {
	t.Parallel()
	procs := startThree(t, "--raft-timeout-scale", "0.3")
	var full *proc
	for _, p := range procs {
		if p != leaderOf(t, procs) {
			full = p
			break
		}
	}
	full.term()
	full.args = append(full.args, "--min-free-disk", "1000TiB") // never has room
	full.restart()
	full.waitReady(60 * time.Second)
	cli(t, full, "operator", "raft", "transfer-leader", full.name)
	poll(t, "the full server to hand leadership on", 30*time.Second, func() bool {
		l := leaderOf(t, procs)
		return l != full
	})
	ctx := context.Background()
	if _, err := leaderOf(t, procs).registry().CreateService(ctx, &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
		t.Fatalf("a write after the hand-over: %v", err)
	}
	b, _ := os.ReadFile(full.log)
	if !strings.Contains(string(b), "handing leadership to a server with room") {
		t.Errorf("the full leader did not say it handed leadership on:\n%s", lastLines(string(b), 15))
	}
}

// TestDuplicateNodeID: a second process started with the node ID of a
// live member is refused when it asks to join, and stops saying why; the
// member keeps its place. Before, the leader replaced the member with
// the newcomer, and the two took turns at being removed every ~10 s
// without a log line.
func TestDuplicateNodeID(t *testing.T) {
	procs := startThree(t, "--raft-timeout-scale", "0.3")
	leader := leaderOf(t, procs)
	var member *proc
	for _, p := range procs {
		if p != leader {
			member = p
			break
		}
	}
	dup := startProc(t, member.name, "--data-dir", t.TempDir(), "--raft-addr", "127.0.0.1:0", "--join", leader.peer, "--raft-timeout-scale", "0.3")
	log, exited := dup.exited(60 * time.Second)
	if !exited {
		t.Fatal("the process with a duplicate node ID kept running")
	}
	if !strings.Contains(log, "give this server another --node-id") {
		t.Errorf("the duplicate stopped without saying why:\n%s", lastLines(log, 10))
	}
	b, _ := os.ReadFile(leader.log)
	if !strings.Contains(string(b), "refused a join: another server of the cluster, alive, has that node ID") {
		t.Errorf("the leader did not say it refused the join")
	}
	peer, err := member.self(context.Background())
	if err != nil || !peer.GetVoter() || peer.GetRaftAddress() != member.peer {
		t.Errorf("the member lost its place: %v, %v", peer, err)
	}
}
