// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubedns

import (
	"github.com/miekg/dns"
)

// ServeDNS implements dns.Handler: one question per message, EDNS0, and
// truncation (TC) when a UDP answer does not fit, so clients retry over
// TCP. An answer already given at the snapshot's revision is sent again
// from the cache (answerCache). A panic while answering is SERVFAIL, never
// a dead server.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			if r.onPanic != nil {
				r.onPanic(p)
			}
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeServerFailure)
			w.WriteMsg(m)
		}
	}()
	tcp := w.RemoteAddr().Network() == "tcp"
	snap, err := r.source()
	if err != nil {
		w.WriteMsg(r.reply(req, tcp, nil))
		return
	}
	key, cacheable := keyOf(req, tcp)
	if cacheable {
		if b := r.cache.get(snap.Revision(), key, req.Id); b != nil {
			w.Write(b)
			return
		}
	}
	m := r.reply(req, tcp, snap)
	packed, err := m.Pack()
	if err != nil {
		w.WriteMsg(m) // says why
		return
	}
	if cacheable && (m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError) {
		r.cache.put(snap.Revision(), key, packed)
	}
	w.Write(packed)
}

// Reply builds the response to req (tcp: the transport is a stream) from
// the source's current snapshot.
func (r *Resolver) Reply(req *dns.Msg, tcp bool) *dns.Msg {
	snap, err := r.source()
	if err != nil {
		snap = nil
	}
	return r.reply(req, tcp, snap)
}

// reply builds the response to req from snap (nil: SERVFAIL, the source
// cannot answer).
func (r *Resolver) reply(req *dns.Msg, tcp bool, snap Snapshot) *dns.Msg {
	m := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		if len(req.Question) != 1 {
			m.SetRcodeFormatError(req)
		}
		return m
	}
	m.SetReply(req)
	m.RecursionAvailable = false
	size := dns.MinMsgSize
	opt := req.IsEdns0()
	if opt != nil {
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), r.maxUDP)
	}
	limit := budgetFor(size)
	if tcp {
		size, limit = dns.MaxMsgSize, unlimited
	}
	var visible func(string) bool
	if r.hidden != nil {
		visible = func(ns string) bool { return !r.hidden(ns) }
	}
	a := Answer{Rcode: dns.RcodeServerFailure}
	if snap != nil {
		a, _ = r.answerFrom(snap, req.Question[0], limit, visible) // an error is SERVFAIL
	}
	m.Rcode = a.Rcode
	m.Authoritative = a.Authoritative
	m.Answer, m.Ns, m.Extra = a.Answer, a.Authority, a.Additional
	if opt != nil {
		m.SetEdns0(uint16(min(max(int(opt.UDPSize()), dns.MinMsgSize), r.maxUDP)), false)
	}
	m.Truncate(size)
	if a.Truncated {
		m.Truncated = true
	}
	return m
}
