// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubedns

import (
	"sync"

	"github.com/miekg/dns"
)

// answerCache holds the packed answers of one registry revision. An answer
// is a function of the revision, the question and how it was asked (the
// transport, the EDNS0 size, the header bits a reply copies), so the same
// question at the same revision is answered by copying bytes and setting
// the request's ID. Any write moves the revision, and the first question
// at the new revision empties the cache: an answer is never older than
// the snapshot the question was read at, and a write is in DNS as soon as
// it returns, as without a cache.
type answerCache struct {
	mu      sync.RWMutex
	rev     int64
	answers map[answerKey][]byte
	bytes   int // of the answers kept
}

// The cache's bounds: when a new answer would pass either (many distinct
// questions at one revision, or a name asked in many letter cases), it
// starts again empty.
const (
	answerCacheSize  = 4096
	answerCacheBytes = 4 << 20 // a TCP answer may be 64 KiB
)

// answerKey is what, beside the revision, an answer depends on.
type answerKey struct {
	name          string // as asked: the answer echoes its case
	qtype, qclass uint16
	rd, cd, tcp   bool
	udpSize       uint16 // the OPT record's size; 0 without EDNS0
}

// keyOf is req's key, or false for a message not answered from the cache.
func keyOf(req *dns.Msg, tcp bool) (answerKey, bool) {
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery || req.Response {
		return answerKey{}, false
	}
	q := req.Question[0]
	k := answerKey{name: q.Name, qtype: q.Qtype, qclass: q.Qclass, rd: req.RecursionDesired, cd: req.CheckingDisabled, tcp: tcp}
	if opt := req.IsEdns0(); opt != nil {
		k.udpSize = max(opt.UDPSize(), 1) // an OPT of size 0 still asks for EDNS0
	}
	return k, true
}

// get returns a copy of the answer to k at rev, with the ID id, or nil.
func (c *answerCache) get(rev int64, k answerKey, id uint16) []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, ok := c.answers[k]
	if !ok || c.rev != rev {
		return nil
	}
	out := make([]byte, len(b))
	copy(out, b)
	out[0], out[1] = byte(id>>8), byte(id)
	return out
}

// put keeps the packed answer to k at rev.
func (c *answerCache) put(rev int64, k answerKey, packed []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev < c.rev {
		return // a question read at an older snapshot answered late
	}
	if rev > c.rev || len(c.answers) >= answerCacheSize || c.bytes+len(packed) > answerCacheBytes || c.answers == nil {
		c.rev, c.answers, c.bytes = rev, make(map[answerKey][]byte, 64), 0
	}
	if _, ok := c.answers[k]; !ok {
		c.bytes += len(packed)
	}
	c.answers[k] = packed
}
