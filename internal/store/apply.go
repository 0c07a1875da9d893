// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// Result is what a command produced.
type Result struct {
	// Revision is the store revision after the command: a new one when
	// anything changed, the current one otherwise.
	Revision  int64
	Service   *svcregv1.Service
	Instance  *svcregv1.Instance
	Endpoints []*svcregv1.Endpoint
	Token     *svcregv1.Token
}

// applyCtx is what a command's transaction helpers share.
type applyCtx struct {
	txn  *writeTxn
	rev  int64     // the revision this command writes at
	time time.Time // the proposer's clock
	// owner is the accessor the write came with; requireOwner limits it to
	// the instances owner owns.
	owner        string
	requireOwner bool
}

// Apply checks a command as a proposer would (Prepare, then Precheck) and
// executes it at the next revision: the store's own write path when
// nothing replicates it.
func (s *Store) Apply(cmd *storev1.Command) (*Result, error) {
	if ValidateOnly(cmd) {
		return s.DryRun(cmd)
	}
	if err := Prepare(cmd, s.cfg.Limits); err != nil {
		return nil, err
	}
	if err := s.Precheck(cmd); err != nil {
		return nil, err
	}
	return s.ApplyAt(s.Revision()+1, cmd)
}

// ValidateOnly reports whether a command is a dry run: its request says
// validate_only (AIP-163). Such a command is never proposed: the leader
// runs it through DryRun, and the log refuses it (encoding fails).
func ValidateOnly(cmd *storev1.Command) bool {
	op := cmd.ProtoReflect().WhichOneof(cmd.ProtoReflect().Descriptor().Oneofs().ByName("op"))
	if op == nil || op.Message() == nil {
		return false
	}
	req := cmd.ProtoReflect().Get(op).Message()
	f := req.Descriptor().Fields().ByName("validate_only")
	return f != nil && req.Get(f).Bool()
}

// DryRun runs a prepared command against the current state, as the next
// revision, in a transaction it then abandons: every check the write
// would meet (existence, etags, ownership, allocations, the merge of an
// update) and the result it would produce (a new service's cluster IP and
// node ports), without changing anything or recording its request id.
func (s *Store) DryRun(cmd *storev1.Command) (*Result, error) {
	if err := Prepare(cmd, s.cfg.Limits); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	txn := s.db.Load().Txn(true)
	defer txn.Abort()
	current, err := revisionTxn(txn)
	if err != nil {
		return nil, err
	}
	var discarded []appliedRequest
	dry := proto.Clone(cmd).(*storev1.Command)
	dry.RequestId = "" // a dry run is no request to remember, nor a retry of one
	return s.applyOneTxn(&writeTxn{Txn: txn}, current, current+1, dry, &discarded)
}

// ApplyAt executes one command in one transaction, everything or nothing,
// at revision index: the Raft log index of the entry carrying it, so that
// every replica gives every change the same revision. Revisions are
// sparse (not every index changes the store). A command whose request id
// was already applied changes nothing and reports that revision.
//
// The command must have passed Prepare: the state machine re-checks only
// what depends on the state (existence, etags, allocations, the merge of
// an update with the stored object).
func (s *Store) ApplyAt(index int64, cmd *storev1.Command) (*Result, error) {
	out := s.ApplyBatch([]Entry{{Index: index, Command: cmd}})
	return out[0].Result, out[0].Err
}

// Entry is a command at its log index.
type Entry struct {
	Index   int64
	Command *storev1.Command
}

// Outcome is what applying an Entry gave.
type Outcome struct {
	Result *Result
	Err    error
}

// ApplyBatch applies entries in order, each as ApplyAt would, sharing
// memdb transactions between them: one commit (and one copy of the paths
// the commands touch) per run of successful commands rather than per
// command. A command that fails leaves no trace: the run before it is
// applied again without it (deterministically the same), then it alone.
func (s *Store) ApplyBatch(entries []Entry) []Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Outcome, len(entries))
	for i := 0; i < len(entries); {
		i += s.applyRunLocked(entries[i:], out[i:])
	}
	return out
}

// applyRunLocked applies entries in one transaction up to the first that
// fails, and returns how many it consumed: all of them, the ones before a
// failure (committed), or the failing first one (not).
func (s *Store) applyRunLocked(entries []Entry, out []Outcome) int {
	txn := s.db.Load().Txn(true)
	defer txn.Abort()
	w := &writeTxn{Txn: txn}
	current, err := revisionTxn(txn)
	if err != nil {
		out[0] = Outcome{Err: err}
		return 1
	}
	type committed struct {
		rev    int64
		events []Event
	}
	var done []committed
	var remembered []appliedRequest // joins the request log on commit
	for k, e := range entries {
		mark := len(w.changes)
		res, err := s.applyOneTxn(w, current, e.Index, e.Command, &remembered)
		if err != nil {
			if k == 0 {
				out[0] = Outcome{Err: err}
				return 1
			}
			// Undo: the transaction is abandoned and the successful run
			// before this command applied again, alone.
			txn.Abort()
			return s.applyRunLocked(entries[:k], out[:k])
		}
		out[k] = Outcome{Result: res}
		if len(w.changes) > mark {
			current = e.Index
			if len(s.hooks) > 0 {
				done = append(done, committed{e.Index, eventsOf(e.Index, commandChanges(w.changes[mark:]))})
			}
		}
	}
	if len(w.changes) == 0 {
		return len(entries)
	}
	if err := txn.Insert(tableIndex, &indexEntry{Key: revisionKey, Value: current}); err != nil {
		panic(fmt.Sprintf("store: recording revision %d: %v", current, err)) // schema bug
	}
	txn.Commit()
	for _, r := range remembered {
		s.requests.add(r)
	}
	for _, c := range done {
		for _, h := range s.hooks {
			h(c.events)
		}
	}
	if w.tokens {
		for _, h := range s.tokenHooks {
			h()
		}
	}
	for _, h := range s.revHooks {
		h(current)
	}
	close(s.applied)
	s.applied = make(chan struct{})
	return len(entries)
}

// applyOneTxn runs one command in w at index, after the store's revision
// current.
func (s *Store) applyOneTxn(w *writeTxn, current, index int64, cmd *storev1.Command, remembered *[]appliedRequest) (*Result, error) {
	if index <= current {
		return nil, fmt.Errorf("store: command at revision %d, but the store is at %d", index, current)
	}
	var key requestKey
	if id := cmd.GetRequestId(); id != "" {
		key = keyOfRequest(id)
		if rev, dup := s.requests.lookup(key, *remembered); dup {
			return s.duplicateTxn(w.Txn, cmd, rev)
		}
	}
	ctx := &applyCtx{txn: w, rev: index, time: cmd.GetTime().AsTime(), owner: cmd.GetOwner(), requireOwner: cmd.GetRequireOwner()}
	mark := len(w.changes)
	res, err := s.dispatchTxn(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if len(w.changes) == mark {
		res.Revision = current
		return res, nil
	}
	if cmd.GetRequestId() != "" {
		*remembered = append(*remembered, appliedRequest{key: key, rev: index, at: cmd.GetTime().AsTime().UnixNano()})
	}
	res.Revision = index
	return res, nil
}

// dispatchTxn runs a command's helper.
func (s *Store) dispatchTxn(ctx *applyCtx, cmd *storev1.Command) (*Result, error) {
	switch op := cmd.GetOp().(type) {
	case *storev1.Command_CreateService:
		return s.createServiceTxn(ctx, op.CreateService)
	case *storev1.Command_UpdateService:
		return s.updateServiceTxn(ctx, op.UpdateService)
	case *storev1.Command_DeleteService:
		return s.deleteServiceTxn(ctx, op.DeleteService)
	case *storev1.Command_CreateInstance:
		return s.createInstanceTxn(ctx, op.CreateInstance)
	case *storev1.Command_UpdateInstance:
		return s.updateInstanceTxn(ctx, op.UpdateInstance)
	case *storev1.Command_DeleteInstance:
		return s.deleteInstanceTxn(ctx, op.DeleteInstance)
	case *storev1.Command_ReplaceEndpoints:
		return s.replaceEndpointsTxn(ctx, op.ReplaceEndpoints)
	case *storev1.Command_ExpireInstances:
		return s.expireInstancesTxn(ctx, op.ExpireInstances)
	case *storev1.Command_SetNode:
		return s.setNodeTxn(ctx, op.SetNode)
	case *storev1.Command_CreateToken:
		return createTokenTxn(ctx, op.CreateToken)
	case *storev1.Command_DeleteToken:
		return deleteTokenTxn(ctx, op.DeleteToken)
	case *storev1.Command_ReportProbe:
		return s.reportProbeTxn(ctx, op.ReportProbe)
	}
	return nil, fmt.Errorf("store: unknown command %T", cmd.GetOp())
}

func revisionTxn(txn *memdb.Txn) (int64, error) {
	obj, err := txn.First(tableIndex, indexID, revisionKey)
	if err != nil || obj == nil {
		return 0, err
	}
	return obj.(*indexEntry).Value, nil
}
