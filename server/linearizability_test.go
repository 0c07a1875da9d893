// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// The registry as a key-value register per instance name: create,
// update (its "v" label), delete and get. Checked with porcupine against
// histories recorded from concurrent clients.

type kvInput struct {
	op    string // create, update, delete, get
	key   string
	value string
}

type kvOutput struct {
	code    codes.Code // OK, ALREADY_EXISTS or NOT_FOUND
	value   string     // get: the "v" label
	unknown bool       // a write whose outcome the client never learned
}

type kvState struct {
	exists bool
	value  string
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{kvState{}} },
	Step: func(s, in, out any) []any {
		st, i, o := s.(kvState), in.(kvInput), out.(kvOutput)
		var next kvState // the write's effect when it succeeds
		var ok bool      // whether it succeeds from this state
		fail := codes.OK // the error it gets otherwise
		switch i.op {
		case "get":
			if st.exists && o.code == codes.OK && o.value == st.value || !st.exists && o.code == codes.NotFound {
				return []any{st}
			}
			return nil
		case "create":
			next, ok, fail = kvState{true, i.value}, !st.exists, codes.AlreadyExists
		case "update":
			next, ok, fail = kvState{true, i.value}, st.exists, codes.NotFound
		case "delete":
			next, ok, fail = kvState{}, st.exists, codes.NotFound
		}
		switch {
		case o.unknown && ok:
			return []any{st, next} // it may or may not have happened
		case o.unknown:
			return []any{st}
		case ok && o.code == codes.OK:
			return []any{next}
		case !ok && o.code == fail:
			return []any{st}
		}
		return nil
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(kvInput), out.(kvOutput)
		if o.unknown {
			return fmt.Sprintf("%s(%s, %s) -> ?", i.op, i.key, i.value)
		}
		return fmt.Sprintf("%s(%s, %s) -> %v %s", i.op, i.key, i.value, o.code, o.value)
	},
}

// history records operations with monotonic timestamps.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// do runs one operation against a server and records it. Reads that
// fail are left out (they observed nothing); writes that fail without a
// definite answer may or may not have happened: they stay open forever.
func (h *history) do(client int, m *member, in kvInput, consistency string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := h.now()
	var err error
	out := kvOutput{}
	switch in.op {
	case "create":
		inst := webInst(in.key)
		inst.Labels["v"] = in.value
		_, err = m.client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst})
	case "update":
		inst := webInst(in.key)
		inst.Labels["v"] = in.value
		_, err = m.client.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: inst, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}}})
	case "delete":
		_, err = m.client.DeleteInstance(ctx, &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: in.key})
	case "get":
		var resp *svcregv1.GetInstanceResponse
		resp, err = m.client.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: "shop", Name: in.key, Consistency: consistency})
		out.value = resp.GetInstance().GetLabels()["v"]
	}
	ret := h.now()
	switch code := status.Code(err); code {
	case codes.OK, codes.AlreadyExists, codes.NotFound:
		out.code = code
	default:
		if in.op == "get" {
			return
		}
		out.unknown, ret = true, math.MaxInt64
	}
	h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// workload runs clients doing random operations on a few keys against
// the servers pick returns, until each has done ops operations.
func (h *history) workload(clients, ops int, seed uint64, pick func(rng *rand.Rand, write bool) *member, consistency string) {
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for i := range ops {
				in := kvInput{
					op:    []string{"create", "update", "delete", "get", "get"}[rng.IntN(5)],
					key:   fmt.Sprintf("k%d", rng.IntN(4)),
					value: fmt.Sprintf("c%d-%d", c, i),
				}
				h.do(c, pick(rng, in.op != "get"), in, consistency)
			}
		})
	}
	wg.Wait()
}

func check(t *testing.T, h *history) porcupine.CheckResult {
	t.Helper()
	res, _ := porcupine.CheckOperationsVerbose(kvModel.ToModel(), h.ops, 60*time.Second)
	return res
}

// TestLinearizable: concurrent creates, updates, deletes and consistent
// gets through every server, while the leader is killed, form a
// linearizable history.
func TestLinearizable(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	c.waitLeader().mustCreateService(t, webSvc())
	h := &history{start: time.Now()}
	var mu sync.Mutex
	pick := func(rng *rand.Rand, _ bool) *member {
		mu.Lock()
		defer mu.Unlock()
		live := c.live()
		return live[rng.IntN(len(live))]
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.workload(4, 150, 1, pick, "consistent")
	}()
	// Kill the leader once the clients are under way.
	waitFor(t, "operations before the kill", 20*time.Second, func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.ops) > 150 })
	leader := c.waitLeader()
	// A crash, as the others see it: cut its links first, so the writes
	// it holds are never committed, then stop it.
	c.partition(leader)
	mu.Lock()
	leader.stopped = true // no new operations go there
	mu.Unlock()
	leader.stop()
	<-done

	unknown := 0
	for _, op := range h.ops {
		if op.Output.(kvOutput).unknown {
			unknown++
		}
	}
	t.Logf("%d operations, %d with unknown outcome", len(h.ops), unknown)
	if res := check(t, h); res != porcupine.Ok {
		t.Errorf("the history is %s, want linearizable", res)
		logIllegalKeys(t, h)
	}
}

// logIllegalKeys logs, for each key whose operations alone are not
// linearizable, those operations in call order: what a failure needs to
// be understood.
func logIllegalKeys(t *testing.T, h *history) {
	for _, part := range kvModel.Partition(h.ops) {
		if porcupine.CheckOperations(kvModel.ToModel(), part) {
			continue
		}
		slices.SortFunc(part, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		for _, op := range part {
			ret := "never"
			if op.Return != math.MaxInt64 {
				ret = time.Duration(op.Return).String()
			}
			t.Logf("client %d [%v, %s] %s", op.ClientId, time.Duration(op.Call), ret, kvModel.DescribeOperation(op.Input, op.Output))
		}
	}
}

// TestLinearizabilityCheckerRejectsStaleReads is the control: the same
// checker over a history whose reads come from a follower cut off from
// the others ("stale" consistency) must reject it.
func TestLinearizabilityCheckerRejectsStaleReads(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	leader := c.waitLeader()
	leader.mustCreateService(t, webSvc())
	followers := c.followers(leader)
	cut, other := followers[0], followers[1]
	c.partition(cut)
	h := &history{start: time.Now()}
	// A write that completes before a read begins, which the cut-off
	// follower cannot have seen...
	h.do(0, leader, kvInput{op: "create", key: "k0", value: "first"}, "")
	h.do(1, cut, kvInput{op: "get", key: "k0"}, "stale")
	// ...among concurrent traffic.
	h.workload(3, 50, 2, func(rng *rand.Rand, write bool) *member {
		if !write {
			return cut
		}
		return []*member{leader, other}[rng.IntN(2)]
	}, "stale")
	if res := check(t, h); res != porcupine.Illegal {
		t.Errorf("the checker found a history with stale reads %s, want Illegal", res)
	}
}
