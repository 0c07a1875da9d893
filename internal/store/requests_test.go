// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// TestRequestIDs: a command retried with its request id (after an
// unknown outcome) answers the first application's revision and changes
// nothing, in the same batch or a later one, until the id is forgotten;
// failed commands are not remembered; snapshots carry the ids.
func TestRequestIDs(t *testing.T) {
	create := func(name, id string, at time.Duration) *storev1.Command {
		c := cmd(webInstance(name, "10.0.0.1"))
		c.RequestId, c.Time = id, timestamppb.New(testTime.Add(at))
		return c
	}
	tests := []struct {
		name  string
		batch func(s *Store) []Entry
		// want per entry: the revision answered, or the error kind.
		wantRevs []int64
		wantErrs []error
	}{
		{"retry in a later batch", func(s *Store) []Entry {
			mustApplyEntry(t, s, 10, create("a", "id-1", 0))
			return []Entry{{11, create("a", "id-1", time.Second)}}
		}, []int64{10}, []error{nil}},
		{"retry in the same batch", func(*Store) []Entry {
			return []Entry{{10, create("a", "id-1", 0)}, {11, create("a", "id-1", 0)}}
		}, []int64{10, 10}, []error{nil, nil}},
		{"a different id is a different request", func(s *Store) []Entry {
			mustApplyEntry(t, s, 10, create("a", "id-1", 0))
			return []Entry{{11, create("a", "id-2", 0)}}
		}, []int64{0}, []error{ErrAlreadyExists}},
		{"forgotten after the retention", func(s *Store) []Entry {
			mustApplyEntry(t, s, 10, create("a", "id-1", 0))
			mustApplyEntry(t, s, 11, create("b", "id-2", requestRetention+time.Second))
			return []Entry{{12, create("a", "id-1", requestRetention+time.Second)}}
		}, []int64{0}, []error{ErrAlreadyExists}},
		{"failures are not remembered", func(s *Store) []Entry {
			mustApplyEntry(t, s, 10, create("a", "id-1", 0))
			if _, err := s.ApplyAt(11, create("a", "id-2", 0)); !errors.Is(err, ErrAlreadyExists) {
				t.Fatalf("duplicate create: %v", err)
			}
			mustApplyEntry(t, s, 12, &storev1.Command{RequestId: "id-3", Time: timestamppb.New(testTime),
				Op: &storev1.Command_DeleteInstance{DeleteInstance: &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: "a"}}})
			return []Entry{{13, create("a", "id-2", 0)}}
		}, []int64{13}, []error{nil}},
		{"a failure inside a batch", func(*Store) []Entry {
			return []Entry{{10, create("a", "id-1", 0)}, {11, create("a", "id-2", 0)}, {12, create("b", "id-3", 0)}, {13, create("b", "id-3", 0)}}
		}, []int64{10, 0, 12, 12}, []error{nil, ErrAlreadyExists, nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, restored := range []bool{false, true} {
				s := newTestStore(t, "10.96.0.0/24", "30000-30099")
				entries := tt.batch(s)
				if restored { // the ids survive a snapshot
					var b bytes.Buffer
					if _, err := s.Snapshot().WriteTo(&b); err != nil {
						t.Fatal(err)
					}
					s = newTestStore(t, "10.96.0.0/24", "30000-30099")
					if _, err := s.Restore(&b); err != nil {
						t.Fatal(err)
					}
				}
				for i, o := range s.ApplyBatch(entries) {
					if !errors.Is(o.Err, tt.wantErrs[i]) || tt.wantErrs[i] == nil && o.Err != nil {
						t.Errorf("restored=%v entry %d: error %v, want %v", restored, i, o.Err, tt.wantErrs[i])
					}
					if o.Err == nil && o.Result.Revision != tt.wantRevs[i] {
						t.Errorf("restored=%v entry %d: revision %d, want %d", restored, i, o.Result.Revision, tt.wantRevs[i])
					}
				}
			}
		})
	}
}

func mustApplyEntry(t *testing.T, s *Store, index int64, c *storev1.Command) {
	t.Helper()
	if _, err := s.ApplyAt(index, c); err != nil {
		t.Fatalf("ApplyAt(%d): %v", index, err)
	}
}

func TestKeyOfRequest(t *testing.T) {
	hexID := "00112233445566778899aabbccddeeff"
	if k := keyOfRequest(hexID); k != (requestKey{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}) {
		t.Errorf("hex id: %x", k)
	}
	for _, pair := range [][2]string{{"a", "b"}, {"req-1", "req-2"}, {hexID, hexID[:31] + "g"}} {
		if keyOfRequest(pair[0]) == keyOfRequest(pair[1]) {
			t.Errorf("%q and %q share a key", pair[0], pair[1])
		}
	}
}

// TestPrecheckPassesARetry: a retried create whose original was applied
// passes the precheck (its answer is the original's, from the dedup) and
// applies as the duplicate it is; a new request for the same name is
// refused before it is proposed.
func TestPrecheckPassesARetry(t *testing.T) {
	s := newTestStore(t, "10.96.0.0/24", "30000-30099")
	create := func(id string) *storev1.Command {
		c := cmd(webInstance("web-1", "10.0.0.1"))
		c.RequestId, c.Time = id, timestamppb.New(testTime)
		return c
	}
	mustApplyEntry(t, s, 5, create("first"))
	if err := s.Precheck(create("first")); err != nil {
		t.Errorf("the retry's precheck: %v, want it passed", err)
	}
	res, err := s.ApplyAt(6, create("first"))
	if err != nil || res.Revision != 5 {
		t.Fatalf("the retry applied: %v, %+v; want the original's revision 5", err, res)
	}
	if err := s.Precheck(create("second")); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("another create's precheck: %v, want ALREADY_EXISTS", err)
	}
}
