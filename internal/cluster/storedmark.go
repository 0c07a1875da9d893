// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The stored mark is the highest Raft index the log store has made
// durable, recorded durably itself before the store reports the append
// done. Raft acknowledges nothing (a vote, an AppendEntries reply, a
// commit, so a client's answer) before the append returns, so every
// acknowledged entry is at or below the mark. At start the log (and the
// newest snapshot) must reach it: raft-wal reads a segment up to the
// first frame that does not decode and treats the rest as a torn write,
// so without the mark a zeroed block in the written part of the tail
// segment, or a truncated tail, would silently drop acknowledged entries.
//
// The file holds two 32-byte slots, one per 4 KiB block; each write goes
// to the slot after the last one written, so a torn or damaged write
// leaves the previous mark readable:
//
//	"svcregsm" | sequence (u64) | index (u64) | CRC-32C of the 24 bytes before | 4 zero bytes
//
// The cost is one fdatasync of one block per append batch (measured in
// docs/benchmarks.md).
const (
	markMagic    = "svcregsm"
	markSlotSize = 32
	markSlotGap  = 4096
)

var markCRC = crc32.MakeTable(crc32.Castagnoli)

func markPath(dataDir string) string { return filepath.Join(raftDir(dataDir), "stored-index") }

// storedMark is the open mark file.
type storedMark struct {
	f     *os.File
	seq   uint64
	index uint64
}

// errMarkDamaged: neither slot of the mark file decodes.
var errMarkDamaged = errors.New("neither record decodes")

// parseMark returns the valid slot with the highest sequence.
func parseMark(b []byte) (seq, index uint64, err error) {
	found := false
	for off := 0; off+markSlotSize <= len(b) && off <= markSlotGap; off += markSlotGap {
		s, i, ok := decodeSlot(b[off : off+markSlotSize])
		if ok && (!found || s > seq) {
			seq, index, found = s, i, true
		}
	}
	if !found {
		return 0, 0, errMarkDamaged
	}
	return seq, index, nil
}

func decodeSlot(b []byte) (seq, index uint64, ok bool) {
	if string(b[:8]) != markMagic || crc32.Checksum(b[:24], markCRC) != binary.LittleEndian.Uint32(b[24:28]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]), binary.LittleEndian.Uint64(b[16:24]), true
}

func encodeSlot(seq, index uint64) []byte {
	b := make([]byte, markSlotSize)
	copy(b, markMagic)
	binary.LittleEndian.PutUint64(b[8:16], seq)
	binary.LittleEndian.PutUint64(b[16:24], index)
	binary.LittleEndian.PutUint32(b[24:28], crc32.Checksum(b[:24], markCRC))
	return b
}

// openMark opens the data dir's mark file. A missing file is reported
// with os.ErrNotExist (createMark makes one).
func openMark(dataDir string) (*storedMark, error) {
	f, err := os.OpenFile(markPath(dataDir), os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	b := make([]byte, markSlotGap+markSlotSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, err
	}
	seq, index, err := parseMark(b[:n])
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: the stored-index record %s is damaged (%v): it says how much of the log this server had written, so the log cannot be checked; if the log is known to be complete, remove the file to start without the check, else start with --rejoin",
			errDataLoss, markPath(dataDir), err)
	}
	return &storedMark{f: f, seq: seq, index: index}, nil
}

// createMark makes a new mark file at index, durably (the file and its
// directory entry).
func createMark(dataDir string, index uint64) (*storedMark, error) {
	path := markPath(dataDir)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	m := &storedMark{f: f}
	if err := m.set(index); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// set records index durably.
func (m *storedMark) set(index uint64) error {
	seq := m.seq + 1
	if _, err := m.f.WriteAt(encodeSlot(seq, index), int64(seq%2)*markSlotGap); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(m.f.Fd())); err != nil {
		return err
	}
	m.seq, m.index = seq, index
	return nil
}

func (m *storedMark) Close() error { return m.f.Close() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
