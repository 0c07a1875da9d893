package kubedns

import (
	"github.com/miekg/dns"
)

// maxUDPSize caps the EDNS0 payload size we answer with (RFC 6891 allows
// more, but 4096 avoids fragmentation trouble, as CoreDNS does by default
// with 1232 for the DNS flag day; clients needing more retry over TCP).
const maxUDPSize = 4096

// ServeDNS implements dns.Handler: one question per message, EDNS0, and
// truncation (TC) when a UDP answer does not fit, so clients retry over
// TCP.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	w.WriteMsg(r.Reply(req, w.RemoteAddr().Network() == "tcp"))
}

// Reply builds the response to req (tcp: the transport is a stream).
func (r *Resolver) Reply(req *dns.Msg, tcp bool) *dns.Msg {
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
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
	}
	limit := budgetFor(size)
	if tcp {
		size, limit = dns.MaxMsgSize, unlimited
	}
	a := r.resolve(req.Question[0], limit)
	m.Rcode = a.Rcode
	m.Authoritative = a.Authoritative
	m.Answer, m.Ns, m.Extra = a.Answer, a.Authority, a.Additional
	if opt != nil {
		m.SetEdns0(uint16(min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)), false)
	}
	m.Truncate(size)
	if a.Truncated {
		m.Truncated = true
	}
	return m
}
