// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"errors"
	"os"
	"testing"
)

func TestStoredMark(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(raftDir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := openMark(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("openMark of a new data dir = %v, want ErrNotExist", err)
	}
	m, err := createMark(dir, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{8, 9, 12} {
		if err := m.set(i); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	tests := []struct {
		name    string
		damage  func(path string)
		want    uint64
		wantErr bool
	}{
		{"intact", func(string) {}, 12, false},
		// The last write went to one slot; losing it leaves the one before.
		{"the newest slot zeroed", func(p string) { zeroFile(t, p, 0, markSlotSize) }, 9, false},
		{"the older slot zeroed", func(p string) { zeroFile(t, p, markSlotGap, markSlotSize) }, 12, false},
		{"one bit flipped in the newest", func(p string) { flip(t, p, 20) }, 9, false},
		{"both zeroed", func(p string) { zeroFile(t, p, 0, markSlotGap+markSlotSize) }, 0, true},
		{"truncated to nothing", func(p string) { os.Truncate(p, 0) }, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			os.MkdirAll(raftDir(d), 0o700)
			b, _ := os.ReadFile(markPath(dir))
			os.WriteFile(markPath(d), b, 0o600)
			tt.damage(markPath(d))
			m, err := openMark(d)
			if tt.wantErr {
				if !errors.Is(err, errDataLoss) {
					t.Fatalf("openMark = %v, want a refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.index != tt.want {
				t.Errorf("mark = %d, want %d", m.index, tt.want)
			}
			// Writing on goes to the slot after the one read.
			if err := m.set(100); err != nil {
				t.Fatal(err)
			}
			m2, err := openMark(d)
			if err != nil || m2.index != 100 {
				t.Fatalf("after set(100): %v, %v", m2, err)
			}
			m2.Close()
		})
	}
}

func zeroFile(t *testing.T, path string, off int64, n int) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt(make([]byte, n), off)
}

func flip(t *testing.T, path string, off int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 1
	os.WriteFile(path, b, 0o600)
}

// FuzzParseMark: any bytes decode to a mark or errMarkDamaged, never a
// panic; an encoded slot always decodes to itself.
func FuzzParseMark(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeSlot(1, 42))
	two := make([]byte, markSlotGap+markSlotSize)
	copy(two, encodeSlot(3, 10))
	copy(two[markSlotGap:], encodeSlot(2, 9))
	f.Add(two)
	f.Add([]byte(markMagic + "garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, index, err := parseMark(b)
		if err != nil && !errors.Is(err, errMarkDamaged) {
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil {
			if _, _, ok := decodeSlot(encodeSlot(seq, index)); !ok {
				t.Fatal("a re-encoded slot does not decode")
			}
		}
	})
}
