// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/reason"
)

// cli runs the svcreg binary as an operator would, against p.
func cli(t testing.TB, p *proc, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--addr", p.grpc)...)
	cmd.Env = append(cmd.Environ(), "SVCREG_TOKEN="+testToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("svcreg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stateOf is what a server serves of the web service: its instances (from
// its own store) and its revision.
func stateOf(t testing.TB, p *proc) ([]string, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p.registry().ListEndpoints(ctx, &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "web", Consistency: "stale"})
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	var names []string
	for _, e := range resp.GetEndpoints() {
		names = append(names, e.GetInstance())
	}
	slices.Sort(names)
	return names, resp.GetResourceVersion()
}

// converged waits until every server serves want at one revision, and
// returns it.
func converged(t testing.TB, procs []*proc, want []string) int64 {
	t.Helper()
	var rev int64
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for {
		same := true
		last = ""
		for i, p := range procs {
			names, r := stateOf(t, p)
			last += fmt.Sprintf("\n%s at revision %d: %d instances", p.name, r, len(names))
			if !slices.Equal(names, want) || i > 0 && r != rev {
				same = false
			}
			rev = r
		}
		if same {
			return rev
		}
		if time.Now().After(deadline) {
			t.Fatalf("the servers never agreed on the restored state (%d instances):%s", len(want), last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func names(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	slices.Sort(out)
	return out
}

// TestRestoreDurable: `svcreg snapshot restore` on servers with data dirs
// replaces the state on every server, survives the restart of every
// server, and ends the watches open meanwhile with a reason to list
// again. Before the fix, raft-wal refused the restore's index gap: the
// leader exited (and never stopped), and the others kept the old state.
func TestRestoreDurable(t *testing.T) {
	t.Parallel()
	for _, servers := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d servers", servers), func(t *testing.T) {
			var procs []*proc
			if servers == 1 {
				procs = []*proc{startProc(t, "n1", "--data-dir", t.TempDir())}
				procs[0].waitReady(30 * time.Second)
			} else {
				procs = startThree(t, "--raft-timeout-scale", "0.3")
			}
			leader := leaderOf(t, procs)
			ctx := context.Background()
			if _, err := leader.registry().CreateService(ctx, &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
				t.Fatal(err)
			}
			writeInstances(t, leader, "saved", 40)
			backup := filepath.Join(t.TempDir(), "backup.snap")
			cli(t, leader, "snapshot", "save", backup)
			writeInstances(t, leader, "later", 25)
			converged(t, procs, append(names("later", 25), names("saved", 40)...))

			watchers := make([]*watcher, len(procs))
			for i, p := range procs {
				watchers[i] = &watcher{}
				_, rev := stateOf(t, p)
				watch(p, rev, watchers[i])
			}
			// As the README does: restore through any server (a follower
			// forwards to the leader).
			cli(t, procs[len(procs)-1], "snapshot", "restore", backup)
			want := names("saved", 40)
			converged(t, procs, want)
			for i, w := range watchers {
				select {
				case err := <-w.ended:
					if status.Code(err) != codes.OutOfRange || !strings.Contains(err.Error(), "replaced") {
						t.Errorf("%s's watch ended with %v, want OUT_OF_RANGE saying the state was replaced", procs[i].name, err)
					}
					if r := reasonOf(err); r != reason.ResourceVersionTooOld {
						t.Errorf("%s's watch ended with reason %q, want %q", procs[i].name, r, reason.ResourceVersionTooOld)
					}
				case <-time.After(20 * time.Second):
					t.Errorf("%s's watch did not end at the restore", procs[i].name)
				}
			}
			// Writes go on after the restore.
			writeInstances(t, leaderOf(t, procs), "after", 5)
			want = append(names("after", 5), want...)
			slices.Sort(want)
			rev := converged(t, procs, want)

			// Every server restarted (graceful stop, then kill -9) comes back
			// with the restored state.
			for _, stop := range []func(*proc){(*proc).term, (*proc).kill} {
				for _, p := range procs {
					if _, ok := p.exited(0); ok {
						t.Fatalf("%s exited on its own", p.name)
					}
					stop(p)
				}
				for _, p := range procs {
					p.restart()
				}
				for _, p := range procs {
					p.waitReady(60 * time.Second)
				}
				if got := converged(t, procs, want); got != rev {
					t.Errorf("after the restart the servers are at revision %d, before at %d", got, rev)
				}
			}
		})
	}
}

func reasonOf(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(interface{ GetReason() string }); ok {
			return info.GetReason()
		}
	}
	return ""
}
