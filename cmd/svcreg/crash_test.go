// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// A crash (or a clean stop) plus damage to the data dir must never bring a
// server back with fewer acknowledged writes than it had: it either
// refuses to start, naming what is lost, or serves every one of them.
// These tests damage real data dirs of real processes.

// damage is a change to a stopped server's data dir.
type damage struct {
	name string
	do   func(t *testing.T, dataDir string)
}

// tailSegment is the data dir's raft-wal segment with the greatest base
// index (the one appended to).
func tailSegment(t *testing.T, dataDir string) string {
	segs := segments(t, dataDir)
	slices.Sort(segs) // names begin with the zero-padded base index
	return segs[len(segs)-1]
}

// zeroAt writes n zero bytes at a fraction of the tail segment's written
// part, rounded down to a 4 KiB block as a disk loses them.
func zeroAt(frac float64, n int) func(t *testing.T, dataDir string) {
	return func(t *testing.T, dataDir string) {
		seg := tailSegment(t, dataDir)
		off := int64(float64(usedBytes(t, seg))*frac) &^ 4095
		overwrite(t, seg, off, make([]byte, n))
	}
}

func overwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

var crashDamages = []damage{
	{"zeroed block at the start", zeroAt(0, 4096)},
	{"zeroed block in the middle", zeroAt(0.5, 4096)},
	{"zeroed block at three quarters", zeroAt(0.75, 4096)},
	{"zeroed last block", func(t *testing.T, dir string) {
		seg := tailSegment(t, dir)
		overwrite(t, seg, (usedBytes(t, seg)-1)&^4095, make([]byte, 4096))
	}},
	{"truncated tail", func(t *testing.T, dir string) {
		seg := tailSegment(t, dir)
		if err := os.Truncate(seg, usedBytes(t, seg)*9/10); err != nil {
			t.Fatal(err)
		}
	}},
	{"zeroed stored-index record", func(t *testing.T, dir string) {
		overwrite(t, filepath.Join(dir, "raft", "stored-index"), 0, make([]byte, 8192))
	}},
	{"deleted stored-index record", func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, "raft", "stored-index")); err != nil {
			t.Fatal(err)
		}
	}},
}

// crashedDataDir writes a service and n instances to a new single server,
// stops it (SIGTERM, or SIGKILL with no shutdown code), and returns the
// data dir and the acknowledged instances.
func crashedDataDir(t *testing.T, stop func(*proc), n int) (string, []string) {
	dir := t.TempDir()
	p := startProc(t, "n1", "--data-dir", dir)
	p.waitReady(30 * time.Second)
	if _, err := p.registry().CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
		t.Fatal(err)
	}
	writeInstances(t, p, "acked", n)
	stop(p)
	return dir, names("acked", n)
}

// copyDir copies a stopped server's data dir, so that every damage starts
// from the same one.
func copyDir(t *testing.T, from string) string {
	to := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return to
}

// startDamaged starts a single server on dataDir and reports whether it
// refused (with its last start's log) or serves every acknowledged
// instance; anything else fails the test.
func startDamaged(t *testing.T, dataDir string, acked []string) (refused bool, log string) {
	t.Helper()
	p := &proc{t: t, name: "n1", log: filepath.Join(t.TempDir(), "n1.log"),
		args: []string{"serve", "--node-id", "n1", "--data-dir", dataDir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--dns-addr", "-",
			"--bootstrap-token-file", testTokenFile}}
	t.Cleanup(func() {
		p.kill()
		if conn := p.conn.Load(); conn != nil {
			conn.Close()
		}
	})
	p.start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if out, exited := p.exited(20 * time.Millisecond); exited {
			return true, out[strings.LastIndex(out, "--- start"):]
		}
		b, _ := os.ReadFile(p.log)
		if servingLine.Match(b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the damaged server neither refused nor served:\n%s", lastLines(string(b), 20))
		}
	}
	p.awaitListening()
	p.redial()
	p.waitReady(60 * time.Second)
	got, _ := stateOf(t, p)
	if !slices.Equal(got, acked) {
		missing := 0
		for _, a := range acked {
			if _, ok := slices.BinarySearch(got, a); !ok {
				missing++
			}
		}
		b, _ := os.ReadFile(p.log)
		t.Fatalf("the damaged server started without %d of its %d acknowledged instances (serving %d), saying nothing:\n%s",
			missing, len(acked), len(got), lastLines(string(b), 15))
	}
	return false, ""
}

// checkRefusal fails unless a refusal names the loss and the way out.
func checkRefusal(t *testing.T, log, dataDir string) {
	t.Helper()
	if !strings.Contains(log, dataDir) || !strings.Contains(log, "refusing to start: data lost") || !strings.Contains(log, "--rejoin") {
		t.Errorf("the refusal does not name the data dir's file, the loss and the way out:\n%s", lastLines(log, 8))
	}
}

// TestCrashMatrix: {clean stop, kill -9} x {damage at the start, middle,
// three quarters, last block of the written log, a truncated tail, the
// stored-index record}: the single server refuses, saying what is lost,
// or serves every acknowledged write. Before the stored-index record, the
// kill -9 cases with damage past the once-a-second applied watermark
// started at a lower revision without a word.
func TestCrashMatrix(t *testing.T) {
	t.Parallel()
	for _, stop := range []struct {
		name string
		do   func(*proc)
	}{{"clean stop", (*proc).term}, {"kill -9", (*proc).kill}} {
		t.Run(stop.name, func(t *testing.T) {
			pristine, acked := crashedDataDir(t, stop.do, 2000)
			for _, d := range crashDamages {
				t.Run(d.name, func(t *testing.T) {
					dir := copyDir(t, pristine)
					d.do(t, dir)
					if refused, log := startDamaged(t, dir, acked); refused {
						checkRefusal(t, log, dir)
					}
				})
			}
		})
	}
}

// TestCrashRandomDamage: damage of random place, length and kind (zeros,
// garbage, a cut) to the written part of the log after kill -9: never a
// silent loss. The seeds are fixed, so a failure reproduces.
func TestCrashRandomDamage(t *testing.T) {
	t.Parallel()
	pristine, acked := crashedDataDir(t, (*proc).kill, 1000)
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			dir := copyDir(t, pristine)
			seg := tailSegment(t, dir)
			used := usedBytes(t, seg)
			off := rng.Int64N(used)
			n := 1 + rng.IntN(8192)
			switch kind := rng.IntN(3); kind {
			case 0:
				overwrite(t, seg, off, make([]byte, n))
			case 1:
				garbage := make([]byte, n)
				for i := range garbage {
					garbage[i] = byte(rng.Uint32())
				}
				overwrite(t, seg, off, garbage)
			case 2:
				if err := os.Truncate(seg, off); err != nil {
					t.Fatal(err)
				}
			}
			if refused, log := startDamaged(t, dir, acked); refused {
				checkRefusal(t, log, dir)
			}
		})
	}
}

// TestCrashedMemberHeals: a member of a three-server cluster whose log
// lost acknowledged entries (kill -9, then a zeroed block) does not
// refuse when its peers can heal it: it moves its data aside, copies the
// state from the leader, serves all of it once ready, and is a voter
// again.
func TestCrashedMemberHeals(t *testing.T) {
	t.Parallel()
	procs := startThree(t, "--raft-timeout-scale", "0.3")
	leader := leaderOf(t, procs)
	if _, err := leader.registry().CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
		t.Fatal(err)
	}
	writeInstances(t, leader, "acked", 1000)
	victim := procs[0]
	if victim == leader {
		victim = procs[1]
	}
	converged(t, procs, names("acked", 1000))
	victim.kill()
	dataDir := victim.args[argIndex(victim.args, "--data-dir")+1]
	zeroAt(0.75, 4096)(t, dataDir)
	writeInstances(t, leaderOf(t, procs), "while-down", 50)

	victim.restart()
	victim.waitReady(60 * time.Second)
	want := append(names("acked", 1000), names("while-down", 50)...)
	slices.Sort(want)
	converged(t, procs, want)
	b, _ := os.ReadFile(victim.log)
	if !strings.Contains(string(b), "lost entries it had acknowledged") {
		t.Errorf("the healed member did not say what it lost:\n%s", lastLines(string(b), 20))
	}
	poll(t, "the healed member to be a voter again", 60*time.Second, func() bool {
		peer, err := victim.self(context.Background())
		return err == nil && peer.GetVoter()
	})
	// Once healed it restarts like any member.
	victim.term()
	victim.restart()
	victim.waitReady(60 * time.Second)
	converged(t, procs, want)
}
