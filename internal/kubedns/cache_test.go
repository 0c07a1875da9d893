// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubedns

import (
	"fmt"
	"net"
	"testing"

	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// fakeSnapshot is a registry at one revision with a headless service
// "big.shop" of n ready endpoints; reads counts the service reads.
type fakeSnapshot struct {
	Snapshot
	rev   int64
	n     int
	reads *int
}

func (f fakeSnapshot) Revision() int64 { return f.rev }
func (f fakeSnapshot) Service(ns, name string) (*svcregv1.Service, error) {
	*f.reads++
	return &svcregv1.Service{Namespace: "shop", Name: "big", ClusterIp: "None"}, nil
}
func (f fakeSnapshot) EachEndpoint(ns, svc string, yield func(*svcregv1.Endpoint) bool) error {
	for i := range f.n {
		ep := &svcregv1.Endpoint{Namespace: ns, Service: svc, Ip: net.IPv4(10, 1, 0, byte(i+1)).String(), Ready: proto.Bool(true), Serving: proto.Bool(true)}
		if !yield(ep) {
			break
		}
	}
	return nil
}

// TestAnswerCache: the same question at the same revision is answered
// from the cache (no read), with the request's ID and the question's case;
// a new revision answers from the new state; how a question is asked
// (EDNS0 size, TCP) is part of what is cached; SERVFAIL is never cached.
func TestAnswerCache(t *testing.T) {
	reads := 0
	snap := fakeSnapshot{rev: 7, n: 3, reads: &reads}
	failing := false
	r := New(func() (Snapshot, error) {
		if failing {
			return nil, errNotReady
		}
		return snap, nil
	}, Config{Zone: "cluster.local", TTL: 5})
	ask := func(name string, id uint16, edns uint16, tcp bool) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		q.Id = id
		if edns > 0 {
			q.SetEdns0(edns, false)
		}
		w := &recorder{tcp: tcp}
		r.ServeDNS(w, q)
		if w.msg == nil || w.msg.Id != id || w.msg.Question[0].Name != name {
			t.Fatalf("%s (id %d): answer %v", name, id, w.msg)
		}
		return w.msg
	}
	tests := []struct {
		name      string
		before    func()
		qname     string
		edns      uint16
		tcp       bool
		wantReads int // service reads this question made
		wantA     int
		wantRcode int
	}{
		{"first question", nil, "big.shop.svc.cluster.local.", 0, false, 1, 3, dns.RcodeSuccess},
		{"again: from the cache", nil, "big.shop.svc.cluster.local.", 0, false, 0, 3, dns.RcodeSuccess},
		{"another case is another question", nil, "BIG.shop.svc.cluster.local.", 0, false, 1, 3, dns.RcodeSuccess},
		{"a write: the new state", func() { snap.rev, snap.n = 8, 40 }, "big.shop.svc.cluster.local.", 0, false, 1, 29, dns.RcodeSuccess},
		{"again at the new revision", nil, "big.shop.svc.cluster.local.", 0, false, 0, 29, dns.RcodeSuccess},
		{"EDNS0: a larger answer", nil, "big.shop.svc.cluster.local.", 1232, false, 1, 40, dns.RcodeSuccess},
		{"TCP: everything", nil, "big.shop.svc.cluster.local.", 0, true, 1, 40, dns.RcodeSuccess},
		{"not ready: SERVFAIL", func() { failing = true }, "big.shop.svc.cluster.local.", 0, false, 0, 0, dns.RcodeServerFailure},
		{"ready again: not a cached SERVFAIL", func() { failing = false }, "big.shop.svc.cluster.local.", 0, false, 0, 29, dns.RcodeSuccess},
	}
	for i, tt := range tests {
		if tt.before != nil {
			tt.before()
		}
		before := reads
		m := ask(tt.qname, uint16(100+i), tt.edns, tt.tcp)
		if got := reads - before; got != tt.wantReads || len(m.Answer) != tt.wantA || m.Rcode != tt.wantRcode {
			t.Errorf("%s: %d reads, %d answers, %s; want %d, %d, %s", tt.name, got, len(m.Answer), dns.RcodeToString[m.Rcode],
				tt.wantReads, tt.wantA, dns.RcodeToString[tt.wantRcode])
		}
	}
}

// TestAnswerCacheBounds: distinct questions at one revision never hold
// more than the cache's bounds.
func TestAnswerCacheBounds(t *testing.T) {
	var c answerCache
	big := make([]byte, 60<<10)
	for i := range 10 * answerCacheSize {
		c.put(1, answerKey{name: fmt.Sprintf("q%d.", i)}, big[:12+i%len(big)])
		if len(c.answers) > answerCacheSize || c.bytes > answerCacheBytes {
			t.Fatalf("after %d answers: %d kept, %d bytes", i+1, len(c.answers), c.bytes)
		}
	}
	if c.get(1, answerKey{name: fmt.Sprintf("q%d.", 10*answerCacheSize-1)}, 1) == nil {
		t.Error("the newest answer was not kept")
	}
	if c.get(2, answerKey{name: fmt.Sprintf("q%d.", 10*answerCacheSize-1)}, 1) != nil {
		t.Error("an answer of revision 1 was given at revision 2")
	}
}
