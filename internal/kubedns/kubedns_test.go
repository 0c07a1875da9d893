// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubedns

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

func TestReverseIP(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for not a reverse name
	}{
		{"10.0.96.10.in-addr.arpa.", "10.96.0.10"},
		{"1.0.0.127.in-addr.arpa.", "127.0.0.1"},
		{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "fd00::5"},
		{"010.0.96.10.in-addr.arpa.", ""},
		{"256.0.96.10.in-addr.arpa.", ""},
		{"0.96.10.in-addr.arpa.", ""},
		{"x.0.96.10.in-addr.arpa.", ""},
		{"1.2.ip6.arpa.", ""},
		{"web.shop.svc.cluster.local.", ""},
	}
	for _, tt := range tests {
		ip, ok := reverseIP(tt.name)
		switch {
		case tt.want == "" && ok:
			t.Errorf("%s: parsed as %v", tt.name, ip)
		case tt.want != "" && (!ok || ip != netip.MustParseAddr(tt.want)):
			t.Errorf("%s: %v %v, want %s", tt.name, ip, ok, tt.want)
		}
		if tt.want != "" {
			// dns.ReverseAddr builds the same name.
			if arpa, _ := dns.ReverseAddr(tt.want); arpa != tt.name {
				t.Errorf("ReverseAddr(%s) = %s", tt.want, arpa)
			}
		}
	}
}

// FuzzReverseIP: never a panic, and what parses is the name of that IP.
func FuzzReverseIP(f *testing.F) {
	for _, s := range []string{"10.0.96.10.in-addr.arpa.", "1.0.0.127.in-addr.arpa.", "a.b.ip6.arpa.", ".in-addr.arpa.", "example.com."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ip, ok := reverseIP(name)
		if !ok {
			return
		}
		if arpa, err := dns.ReverseAddr(ip.String()); err != nil || arpa != name {
			t.Fatalf("%q parsed as %v, whose name is %q", name, ip, arpa)
		}
	})
}

func TestDashedIP(t *testing.T) {
	for in, want := range map[string]string{"10.0.1.3": "10-0-1-3", "fd00::5": "fd00--5"} {
		if got := dashedIP(in); got != want {
			t.Errorf("dashedIP(%s) = %s", in, got)
		}
	}
}

type panicking struct{ Snapshot }

func (panicking) Service(string, string) (*svcregv1.Service, error) { panic("boom") }
func (panicking) Revision() int64                                   { return 1 }

// TestServeDNSRecoversPanics: a panic while answering is SERVFAIL, and
// the panic is reported.
func TestServeDNSRecoversPanics(t *testing.T) {
	var reported any
	r := New(func() (Snapshot, error) { return panicking{}, nil }, Config{Zone: "cluster.local", TTL: 5, OnPanic: func(p any) { reported = p }})
	q := new(dns.Msg)
	q.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	w := &recorder{}
	r.ServeDNS(w, q)
	if w.msg == nil || w.msg.Rcode != dns.RcodeServerFailure || reported != "boom" {
		t.Fatalf("answer %v, reported %v", w.msg, reported)
	}
}

// TestNotReadyIsServfail: while the source cannot answer completely, every
// question is SERVFAIL, never NXDOMAIN (which resolvers cache).
func TestNotReadyIsServfail(t *testing.T) {
	r := New(func() (Snapshot, error) { return nil, errors.New("not caught up") }, Config{Zone: "cluster.local", TTL: 5})
	for _, name := range []string{"web.shop.svc.cluster.local.", "nope.cluster.local.", "10.0.96.10.in-addr.arpa."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		if m := r.Reply(q, false); m.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s while not ready: %s", name, dns.RcodeToString[m.Rcode])
		}
	}
}

type recorder struct {
	dns.ResponseWriter
	msg *dns.Msg
	tcp bool
}

func (r *recorder) WriteMsg(m *dns.Msg) error { r.msg = m; return nil }

// Write records a packed answer (the cache's) as its message.
func (r *recorder) Write(b []byte) (int, error) {
	r.msg = new(dns.Msg)
	return len(b), r.msg.Unpack(b)
}
func (r *recorder) RemoteAddr() net.Addr {
	if r.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}

var errNotReady = errors.New("not caught up")
