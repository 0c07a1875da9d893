// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

// snapshotHeader opens every snapshot; the version changes when the
// record format does.
const snapshotHeader = "svcreg-store-snapshot v1\n"

// Snapshot is a point-in-time read of the whole store. Writing it does not
// block writers: it reads one memdb snapshot while Apply goes on.
type Snapshot struct {
	txn      *memdb.Txn
	requests []appliedRequest
}

// Snapshot opens a snapshot of the current state.
func (s *Store) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Snapshot{txn: s.db.Load().Txn(false), requests: s.requests.live()}
}

// Revision is the snapshot's revision.
func (sn *Snapshot) Revision() int64 {
	rev, _ := revisionTxn(sn.txn)
	return rev
}

// WriteTo streams the snapshot: the header, then length-prefixed
// SnapshotRecords (the revision first).
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw}
	if _, err := io.WriteString(cw, snapshotHeader); err != nil {
		return cw.n, err
	}
	var buf []byte
	write := func(rec *storev1.SnapshotRecord) error {
		var err error
		buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], rec)
		if err != nil {
			return err
		}
		var lenBuf [binary.MaxVarintLen64]byte
		if _, err := cw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(buf)))]); err != nil {
			return err
		}
		_, err = cw.Write(buf)
		return err
	}
	if err := write(&storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Revision{Revision: sn.Revision()}}); err != nil {
		return cw.n, err
	}
	tables := []struct {
		table string
		wrap  func(any) *storev1.SnapshotRecord
	}{
		{tableServices, func(o any) *storev1.SnapshotRecord {
			return &storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Service{Service: o.(*svcregv1.Service)}}
		}},
		{tableInstances, func(o any) *storev1.SnapshotRecord {
			return &storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Instance{Instance: o.(*svcregv1.Instance)}}
		}},
		{tableEndpoints, func(o any) *storev1.SnapshotRecord {
			return &storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Endpoint{Endpoint: o.(*svcregv1.Endpoint)}}
		}},
		{tableAllocations, func(o any) *storev1.SnapshotRecord {
			a := o.(*allocation)
			return &storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Allocation{Allocation: &storev1.Allocation{Key: a.Key, Owner: a.Owner}}}
		}},
		{tableNodes, func(o any) *storev1.SnapshotRecord {
			return &storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Node{Node: o.(*storev1.SetNode)}}
		}},
		{tableTokens, func(o any) *storev1.SnapshotRecord {
			return &storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Token{Token: o.(*storev1.StoredToken)}}
		}},
	}
	for _, t := range tables {
		it, err := sn.txn.Get(t.table, indexID+"_prefix", "")
		if err != nil {
			return cw.n, err
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if err := write(t.wrap(obj)); err != nil {
				return cw.n, err
			}
		}
	}
	if (&ReadTxn{txn: sn.txn}).TokensBootstrapped() {
		if err := write(&storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_TokensBootstrapped{TokensBootstrapped: true}}); err != nil {
			return cw.n, err
		}
	}
	for _, r := range sn.requests {
		rec := &storev1.AppliedRequest{Id: hex.EncodeToString(r.key[:]), Revision: r.rev, Time: timestamppb.New(time.Unix(0, r.at))}
		if err := write(&storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Request{Request: rec}}); err != nil {
			return cw.n, err
		}
	}
	return cw.n, bw.Flush()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// maxRecord bounds one record (a service with its maps): far above any
// valid object, far below a corrupt length's harm.
const maxRecord = 16 << 20

// Restore replaces the store's state with a snapshot: a new memdb is
// built aside and swapped in, so readers never see a half-restored state.
// Restore hooks run after the swap (the watch history resets there).
func (s *Store) Restore(r io.Reader) (int64, error) {
	db, requests, rev, err := s.load(r)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.db.Store(db)
	s.requests = requests
	hooks, tokenHooks := s.restoreHooks, s.tokenHooks
	close(s.applied)
	s.applied = make(chan struct{})
	s.mu.Unlock()
	for _, h := range hooks {
		h(rev)
	}
	for _, h := range tokenHooks {
		h()
	}
	return rev, nil
}

// invalidSnapshot marks a loading error as ErrInvalidSnapshot.
func invalidSnapshot(err error) error {
	if errors.Is(err, ErrInvalidSnapshot) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrInvalidSnapshot, err)
}

// PrepareRestore copies an uploaded snapshot from r to w for a restore
// through Raft, and returns the bytes written. Two things change:
//
//   - its revision becomes rev: a restore must not take revisions back, or
//     watchers and clients that saw later ones would think nothing changed;
//   - its tokens are replaced by the store's current ones: restoring data
//     must neither bring back a revoked token nor lock out the operator
//     who restores (docs/security.md);
//   - its servers' address records are replaced by the current ones: they
//     describe the cluster that restores, not the one that saved (a
//     server that moved since, or joined since, keeps its record).
func (s *Store) PrepareRestore(w io.Writer, r io.Reader, rev int64) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if err := readHeader(br); err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw}
	if _, err := io.WriteString(cw, snapshotHeader); err != nil {
		return cw.n, err
	}
	var in, out []byte
	write := func(rec *storev1.SnapshotRecord) error {
		var err error
		if out, err = proto.Marshal(rec); err != nil {
			return err
		}
		if _, err := cw.Write(binary.AppendUvarint(nil, uint64(len(out)))); err != nil {
			return err
		}
		_, err = cw.Write(out)
		return err
	}
	for n := 0; ; n++ {
		rec, err := readRecord(br, n, &in)
		if errors.Is(err, io.EOF) && n == 0 {
			return cw.n, fmt.Errorf("%w: it has no revision record", ErrInvalidSnapshot)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return cw.n, err
		}
		_, isRev := rec.GetRecord().(*storev1.SnapshotRecord_Revision)
		switch rec.GetRecord().(type) {
		case *storev1.SnapshotRecord_Token, *storev1.SnapshotRecord_TokensBootstrapped, *storev1.SnapshotRecord_Node:
			continue
		}
		if isRev != (n == 0) {
			return cw.n, fmt.Errorf("store: snapshot record %d: the revision must come first, once", n)
		}
		if isRev {
			rec = &storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Revision{Revision: rev}}
		}
		if err := write(rec); err != nil {
			return cw.n, err
		}
	}
	tx := s.Read()
	tokens, err := tx.Tokens()
	if err != nil {
		return cw.n, err
	}
	for _, t := range tokens {
		if err := write(&storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Token{Token: t}}); err != nil {
			return cw.n, err
		}
	}
	nodes, err := tx.Nodes()
	if err != nil {
		return cw.n, err
	}
	for _, node := range nodes {
		if err := write(&storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_Node{Node: node}}); err != nil {
			return cw.n, err
		}
	}
	if tx.TokensBootstrapped() {
		if err := write(&storev1.SnapshotRecord{Record: &storev1.SnapshotRecord_TokensBootstrapped{TokensBootstrapped: true}}); err != nil {
			return cw.n, err
		}
	}
	return cw.n, bw.Flush()
}

// CheckHeader reports whether b begins like a snapshot: the first chunk of
// an upload is checked before anything else is read.
func CheckHeader(b []byte) error {
	n := min(len(b), len(snapshotHeader))
	if n == 0 || !bytes.Equal(b[:n], []byte(snapshotHeader)[:n]) {
		return errBadHeader
	}
	return nil
}

var errBadHeader = fmt.Errorf("%w: not a svcreg snapshot (bad header)", ErrInvalidSnapshot)

func readHeader(br *bufio.Reader) error {
	header := make([]byte, len(snapshotHeader))
	if _, err := io.ReadFull(br, header); err != nil || string(header) != snapshotHeader {
		return errBadHeader
	}
	return nil
}

// readRecord reads the n-th length-prefixed record into a buffer it
// reuses (*buf); io.EOF at a clean end.
func readRecord(br *bufio.Reader, n int, buf *[]byte) (*storev1.SnapshotRecord, error) {
	size, err := binary.ReadUvarint(br)
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil || size > maxRecord {
		return nil, fmt.Errorf("store: snapshot record %d: bad length", n)
	}
	if uint64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	b := (*buf)[:size]
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("store: snapshot record %d: %w", n, err)
	}
	rec := &storev1.SnapshotRecord{}
	if err := proto.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("store: snapshot record %d: %w", n, err)
	}
	return rec, nil
}

// Validate reads a snapshot without installing it and returns its
// revision: a corrupt one fails here, not halfway through a restore. It
// also checks every object as a write would (the store's own snapshots
// pass; one edited by hand or by another program may not), so that a
// restore through Raft never installs what the API would have refused.
func (s *Store) Validate(r io.Reader) (int64, error) {
	db, _, rev, err := s.load(r)
	if err != nil {
		return 0, invalidSnapshot(err)
	}
	txn := db.Txn(false)
	for _, t := range []struct {
		table string
		check func(any) error
	}{
		{tableServices, s.validated},
		{tableInstances, s.validated},
	} {
		it, err := txn.Get(t.table, indexID+"_prefix", "")
		if err != nil {
			return 0, err
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if err := t.check(obj); err != nil {
				return 0, fmt.Errorf("%w: %s %q: %v", ErrInvalidSnapshot, strings.TrimSuffix(t.table, "s"), objectName(obj), err)
			}
		}
	}
	return rev, nil
}

func objectName(obj any) string {
	switch o := obj.(type) {
	case *svcregv1.Service:
		return meta.Key(o.GetNamespace(), o.GetName())
	case *svcregv1.Instance:
		return meta.Key(o.GetNamespace(), o.GetName())
	}
	return ""
}

// load reads a snapshot into a new database. One goroutine reads and
// decodes the records while this one inserts them: decoding is a third of
// a restart's CPU, and it overlaps the index inserts on another core.
func (s *Store) load(r io.Reader) (*memdb.MemDB, *requestLog, int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if err := readHeader(br); err != nil {
		return nil, nil, 0, err
	}
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, nil, 0, err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	l := &snapshotLoad{txn: txn, requests: newRequestLog()}
	batches := make(chan decodedRecords, 4)
	stop := make(chan struct{})
	defer close(stop)
	go decodeRecords(br, batches, stop)
	n := 0
	for batch := range batches {
		for _, rec := range batch.records {
			if err := l.add(rec, n); err != nil {
				return nil, nil, 0, fmt.Errorf("store: snapshot record %d: %w", n, err)
			}
			n++
		}
		if batch.err != nil {
			return nil, nil, 0, batch.err
		}
	}
	if !l.sawRevision {
		return nil, nil, 0, fmt.Errorf("store: snapshot has no revision record")
	}
	txn.Commit()
	return db, l.requests, l.rev, nil
}

// decodedRecords are records read in a row, then what ended the reading
// (nil at the end of the snapshot).
type decodedRecords struct {
	records []*storev1.SnapshotRecord
	err     error
}

// decodeRecords reads br's records in batches until its end, an error
// (sent with the records before it), or stop.
func decodeRecords(br *bufio.Reader, out chan<- decodedRecords, stop <-chan struct{}) {
	defer close(out)
	const batchSize = 256
	batch := decodedRecords{records: make([]*storev1.SnapshotRecord, 0, batchSize)}
	buf := make([]byte, 0, 4096)
	for n := 0; ; n++ {
		rec, err := readRecord(br, n, &buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				batch.err = err
			}
			break
		}
		batch.records = append(batch.records, rec)
		if len(batch.records) == batchSize {
			select {
			case out <- batch:
			case <-stop:
				return
			}
			batch = decodedRecords{records: make([]*storev1.SnapshotRecord, 0, batchSize)}
		}
	}
	select {
	case out <- batch:
	case <-stop:
	}
}

// snapshotLoad is a snapshot's records going into a write transaction.
type snapshotLoad struct {
	txn         *memdb.Txn
	requests    *requestLog
	rev         int64
	sawRevision bool
}

// add inserts record n.
func (l *snapshotLoad) add(rec *storev1.SnapshotRecord, n int) error {
	txn := l.txn
	if _, isRev := rec.GetRecord().(*storev1.SnapshotRecord_Revision); isRev != (n == 0) {
		return fmt.Errorf("the revision must come first, once")
	}
	switch r := rec.GetRecord().(type) {
	case *storev1.SnapshotRecord_Revision:
		if r.Revision < 0 {
			return fmt.Errorf("revision %d is negative", r.Revision)
		}
		l.rev, l.sawRevision = r.Revision, true
		return txn.Insert(tableIndex, &indexEntry{Key: revisionKey, Value: l.rev})
	case *storev1.SnapshotRecord_Service:
		return insertRecord(txn, tableServices, r.Service, r.Service.GetName() != "")
	case *storev1.SnapshotRecord_Instance:
		return insertRecord(txn, tableInstances, r.Instance, r.Instance.GetName() != "")
	case *storev1.SnapshotRecord_Endpoint:
		return insertRecord(txn, tableEndpoints, r.Endpoint, r.Endpoint.GetService() != "" && r.Endpoint.GetInstance() != "")
	case *storev1.SnapshotRecord_Allocation:
		return txn.Insert(tableAllocations, &allocation{Key: r.Allocation.GetKey(), Owner: r.Allocation.GetOwner()})
	case *storev1.SnapshotRecord_Request:
		l.requests.add(appliedRequest{key: keyOfRequest(r.Request.GetId()), rev: r.Request.GetRevision(), at: r.Request.GetTime().AsTime().UnixNano()})
		return nil
	case *storev1.SnapshotRecord_Node:
		return txn.Insert(tableNodes, r.Node)
	case *storev1.SnapshotRecord_Token:
		return insertRecord(txn, tableTokens, r.Token, r.Token.GetToken().GetAccessor() != "")
	case *storev1.SnapshotRecord_TokensBootstrapped:
		if r.TokensBootstrapped {
			return txn.Insert(tableIndex, &indexEntry{Key: tokensKey, Value: 1})
		}
		return nil
	}
	return fmt.Errorf("unknown record")
}

// insertRecord inserts a snapshot's object, which must at least have the
// fields its key is made of.
func insertRecord(txn *memdb.Txn, table string, obj any, named bool) error {
	if !named {
		return fmt.Errorf("a %s record without a name", strings.TrimSuffix(table, "s"))
	}
	return txn.Insert(table, obj)
}

// Dump writes the store's objects in a canonical text form, for comparing
// replicas in tests.
func (s *Store) Dump(w io.Writer) error {
	txn := s.db.Load().Txn(false)
	for _, table := range []string{tableServices, tableInstances, tableEndpoints, tableAllocations, tableNodes, tableTokens, tableIndex} {
		it, err := txn.Get(table, indexID+"_prefix", "")
		if err != nil {
			return err
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			switch o := obj.(type) {
			case proto.Message:
				b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(o)
				fmt.Fprintf(w, "%s %x\n", table, b)
			default:
				fmt.Fprintf(w, "%s %+v\n", table, o)
			}
		}
	}
	s.mu.Lock()
	requests := s.requests.live()
	s.mu.Unlock()
	for _, r := range requests {
		fmt.Fprintf(w, "request %x %d %d\n", r.key, r.rev, r.at)
	}
	return nil
}
