// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/svcreg/svcreg/internal/servicemodel"
)

// The nftables data plane is kube-proxy's nftables mode done with
// github.com/google/nftables, which speaks netlink itself: no `nft`
// binary on the node (sigs.k8s.io/knftables, kube-proxy's library, drives
// that binary). It owns one table and never touches another:
//
//	table ip svcreg
//	  map frontends { type ipv4_addr . inet_proto . inet_service : verdict }
//	  map node-ports { type inet_proto . inet_service : verdict }
//	  chain nat-prerouting { type nat hook prerouting priority dstnat
//	    ip daddr . meta l4proto . th dport vmap @frontends
//	    fib daddr type local meta l4proto . th dport vmap @node-ports }
//	  chain nat-output     { type nat hook output priority dstnat;  the same }
//	  chain nat-postrouting { type nat hook postrouting priority srcnat
//	    oifname != "lo" meta mark & 0x4000 != 0 masquerade }
//	  chain svc-<h>-<ns>/<name>/<proto>/<port> { [meta mark set 0x4000]
//	    [ip saddr @aff-<h'> goto ep-<h'>-<backend>, for each backend]
//	    numgen random mod W vmap { 0 : goto ep-<h'>-<backend>, ... } }
//	  chain ep-<h'>-<ip>/<port> { [update @aff-<h'> { ip saddr }] dnat to backend }
//	  set aff-<h'> { type ipv4_addr; flags dynamic,timeout }   (ClientIP affinity)
//
// Names are stable: <h> hashes the frontend (protocol and address), <h'>
// the frontend and the backend, so the same service port has the same
// chains in every agent's life and a rewrite finds them again.
//
// A backend of weight w has w of the W slots (weights scaled to at most
// 1,024 slots), which is the kernel's weighted random choice.
//
// Each sync is one netlink batch, which the kernel applies whole or not
// at all (an nf_tables transaction). What the agent remembers as
// programmed (fronts) changes only once a batch was accepted; after a
// refused one the next sync rewrites the whole table. A partial sync
// rewrites the frontends that changed; a full one first compares the
// kernel's table with that memory (its chains and the frontends map) and
// rewrites everything when they differ, keeping the affinity sets'
// contents (adding a set that exists leaves it as it is).
//
// Node ports on a bind address go in frontends like cluster IPs; on the
// unspecified address (0.0.0.0, the default) they go in node-ports, which
// matches a packet to any of the node's own addresses, as kube-proxy's
// nftables mode does.
type nftDataplane struct {
	log       *slog.Logger
	conn      *nftables.Conn
	table     *nftables.Table
	set       *nftables.Set // frontends
	nodePorts *nftables.Set
	// flush sends the pending batch (tests make it fail).
	flush func() error

	fronts  map[frontKey]*nftFront // what the kernel accepted
	rewrite bool                   // the next sync rewrites everything
}

type nftFront struct {
	front *frontend
	eps   map[string]time.Duration // backend address -> its affinity timeout (0: none)
}

const (
	nftTable = "svcreg"
	// markMasquerade marks node-port connections, which are masqueraded so
	// that replies come back through this node.
	markMasquerade = 0x4000
	maxSlots       = 1024
)

func newNFTables(cfg Config) (dataplane, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("%w: nftables mode: opening netlink: %v; try --mode userspace", ErrCannotRun, err)
	}
	d := &nftDataplane{log: cfg.Logger, conn: conn, fronts: map[frontKey]*nftFront{}, rewrite: true}
	d.flush = conn.Flush
	d.table = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nftTable}
	d.set = &nftables.Set{Table: d.table, Name: "frontends", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.TypeVerdict}
	d.nodePorts = &nftables.Set{Table: d.table, Name: "node-ports", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.TypeVerdict}
	// A table a killed agent left is rewritten by the first sync; check now
	// that the kernel takes ours at all.
	if err := d.writeAll(nil, nil); err != nil {
		return nil, fmt.Errorf("%w: nftables mode: the kernel refused the table (is nf_tables with NAT available?): %v; try --mode userspace", ErrCannotRun, err)
	}
	return d, nil
}

// cleanupNFTables removes the agent's table, if there is one (after a
// crash).
func cleanupNFTables() error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t.Name == nftTable {
			conn.DelTable(t)
			return conn.Flush()
		}
	}
	return nil
}

// hashName is 8 hex digits of SHA-256 of parts: the stable part of a
// chain's or set's name.
func hashName(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(h[:4])
}

func svcChainName(k frontKey, p *frontend) string {
	what := p.service + "/" + k.proto + "/" + p.port
	if p.nodePort {
		what += "/node-port"
	}
	return "svc-" + hashName(k.String()) + "-" + what
}

func epChainName(k frontKey, addr string) string {
	return "ep-" + hashName(k.String(), addr) + "-" + strings.ReplaceAll(addr, ":", "/")
}

func affinitySetName(k frontKey, addr string) string { return "aff-" + hashName(k.String(), addr) }

func (d *nftDataplane) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: d.table}
}

// element is a frontend's map and its key there: the address, the
// protocol and the port in frontends, or the protocol and the port in
// node-ports for a node port on the unspecified address; each field in a
// 32-bit register slot. It is false for what is not IPv4.
func (d *nftDataplane) element(k frontKey) (*nftables.Set, []byte, bool) {
	host, port, err := net.SplitHostPort(k.addr)
	if err != nil {
		return nil, nil, false
	}
	ip := net.ParseIP(host).To4()
	n, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return nil, nil, false
	}
	proto := byte(unix.IPPROTO_TCP)
	if k.proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	if ip.IsUnspecified() {
		key := make([]byte, 8)
		key[0] = proto
		binary.BigEndian.PutUint16(key[4:], uint16(n))
		return d.nodePorts, key, true
	}
	key := make([]byte, 12)
	copy(key, ip)
	key[4] = proto
	binary.BigEndian.PutUint16(key[8:], uint16(n))
	return d.set, key, true
}

// sync makes the kernel's table serve exactly the planned frontends; see
// the top of this file.
func (d *nftDataplane) sync(planned map[frontKey]*frontend, full bool) error {
	wanted := map[frontKey]*frontend{}
	for k, p := range planned {
		if _, _, ok := d.element(k); !ok {
			d.log.Warn("nftables mode programs IPv4 frontends only; not proxied", "frontend", k.String(), "service", p.service)
			continue
		}
		wanted[k] = p
		if s := p.config.Scheduler; s != "rr" && s != "wrr" && d.fronts[k] == nil {
			d.log.Info("nftables mode schedules by weighted random: the service's scheduler applies in userspace mode only",
				"service", p.service, "port", p.port, "scheduler", s)
		}
	}
	if full && !d.rewrite {
		if drift, err := d.drift(); err != nil {
			return fmt.Errorf("reading the nftables table back: %w", err)
		} else if drift != "" {
			d.log.Warn("the kernel's nftables table differs from what this agent programmed: rewriting it", "difference", drift)
			d.rewrite = true
		}
	}
	var err error
	if d.rewrite {
		err = d.writeAll(wanted, d.fronts)
	} else {
		err = d.writeChanged(wanted)
	}
	if err != nil {
		d.rewrite = true // the batch was refused whole: the memory still holds
	}
	return err
}

// drift compares the kernel's table with what the agent remembers: its
// chains and the frontends maps' elements.
func (d *nftDataplane) drift() (string, error) {
	want := map[string]bool{"nat-prerouting": true, "nat-output": true, "nat-postrouting": true}
	elements := map[*nftables.Set]int{d.set: 0, d.nodePorts: 0}
	for k, f := range d.fronts {
		want[svcChainName(k, f.front)] = true
		for addr := range f.eps {
			want[epChainName(k, addr)] = true
		}
		set, _, _ := d.element(k)
		elements[set]++
	}
	chains, err := d.conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return "", err
	}
	var missing, extra []string
	have := map[string]bool{}
	for _, c := range chains {
		if c.Table.Name == nftTable {
			have[c.Name] = true
			if !want[c.Name] {
				extra = append(extra, c.Name)
			}
		}
	}
	for name := range want {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	var diffs []string
	if len(missing) > 0 {
		diffs = append(diffs, fmt.Sprintf("%d chains missing (%s)", len(missing), firstNames(missing)))
	}
	if len(extra) > 0 {
		diffs = append(diffs, fmt.Sprintf("%d chains not the agent's (%s)", len(extra), firstNames(extra)))
	}
	if len(missing) == 0 {
		for set, n := range elements {
			got, err := d.conn.GetSetElements(set)
			if err != nil {
				return "", err
			}
			if len(got) != n {
				diffs = append(diffs, fmt.Sprintf("map %s has %d elements, want %d", set.Name, len(got), n))
			}
		}
	}
	return strings.Join(diffs, "; "), nil
}

func firstNames(names []string) string {
	slices.Sort(names)
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + ", ..."
	}
	return strings.Join(names, ", ")
}

// writeAll rewrites the whole table in one batch: the hooks, every wanted
// frontend, and the removal of every chain and set it does not want
// (known: what the agent believes is there; the kernel's own list too).
func (d *nftDataplane) writeAll(wanted map[frontKey]*frontend, known map[frontKey]*nftFront) error {
	d.conn.AddTable(d.table)
	for _, set := range []*nftables.Set{d.set, d.nodePorts} {
		if err := d.conn.AddSet(set, nil); err != nil {
			return err
		}
		d.conn.FlushSet(set) // no element jumps to a chain below while it is rewritten
	}
	d.writeHooks()
	next := map[frontKey]*nftFront{}
	keepChains := map[string]bool{"nat-prerouting": true, "nat-output": true, "nat-postrouting": true}
	keepSets := map[string]bool{d.set.Name: true, d.nodePorts.Name: true}
	for k, p := range wanted {
		f := d.writeFront(k, p, nil)
		next[k] = f
		keepChains[svcChainName(k, p)] = true
		for addr, timeout := range f.eps {
			keepChains[epChainName(k, addr)] = true
			if timeout > 0 {
				keepSets[affinitySetName(k, addr)] = true
			}
		}
	}
	// Whatever else is in the table goes: what a killed agent or a failed
	// batch left, and what someone added.
	stale := map[string]bool{}
	for k, f := range known {
		stale[svcChainName(k, f.front)] = true
		for addr := range f.eps {
			stale[epChainName(k, addr)] = true
		}
	}
	if chains, err := d.conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4); err == nil {
		for _, c := range chains {
			if c.Table.Name == nftTable {
				stale[c.Name] = true
			}
		}
	}
	var drop []string
	for name := range stale {
		if !keepChains[name] {
			drop = append(drop, name)
		}
	}
	for _, name := range drop { // flushed first: one may jump to another
		d.conn.AddChain(d.chain(name))
		d.conn.FlushChain(d.chain(name))
	}
	for _, name := range drop {
		d.conn.DelChain(d.chain(name))
	}
	if sets, err := d.conn.GetSets(d.table); err == nil {
		for _, set := range sets {
			if !set.Anonymous && !keepSets[set.Name] {
				d.conn.DelSet(set)
			}
		}
	}
	for k, p := range wanted {
		set, key, _ := d.element(k)
		d.conn.SetAddElements(set, []nftables.SetElement{{Key: key, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: svcChainName(k, p)}}})
	}
	if err := d.flush(); err != nil {
		return err
	}
	d.fronts, d.rewrite = next, false
	return nil
}

// writeChanged rewrites, in one batch, the frontends that came, went or
// changed since the last accepted batch.
func (d *nftDataplane) writeChanged(wanted map[frontKey]*frontend) error {
	next := maps.Clone(d.fronts)
	for k, f := range d.fronts {
		if _, ok := wanted[k]; !ok {
			d.removeFront(k, f)
			delete(next, k)
		}
	}
	for k, p := range wanted {
		old := d.fronts[k]
		if old != nil && sameBackends(old.front, p) {
			continue
		}
		if old != nil && svcChainName(k, old.front) != svcChainName(k, p) {
			d.removeFront(k, old) // renamed (its port's name changed): anew
			old = nil
		}
		next[k] = d.writeFront(k, p, old)
		if old == nil {
			set, key, _ := d.element(k)
			d.conn.SetAddElements(set, []nftables.SetElement{{Key: key, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: svcChainName(k, p)}}})
		}
	}
	if err := d.flush(); err != nil {
		return err
	}
	d.fronts = next
	return nil
}

// writeHooks (re)writes the base chains.
func (d *nftDataplane) writeHooks() {
	// Concatenated keys are built in consecutive 32-bit registers (9, 10
	// follow 1's first word): nft(8)'s own register layout.
	lookup := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
		&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: d.set.Name, SetID: d.set.ID, IsDestRegSet: true, DestRegister: 0},
	}
	nodePort := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: d.nodePorts.Name, SetID: d.nodePorts.ID, IsDestRegSet: true, DestRegister: 0},
	}
	for _, hook := range []struct {
		name string
		hook *nftables.ChainHook
	}{{"nat-prerouting", nftables.ChainHookPrerouting}, {"nat-output", nftables.ChainHookOutput}} {
		c := d.conn.AddChain(&nftables.Chain{Name: hook.name, Table: d.table, Type: nftables.ChainTypeNAT,
			Hooknum: hook.hook, Priority: nftables.ChainPriorityNATDest})
		d.conn.FlushChain(c)
		d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: c, Exprs: lookup})
		d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: c, Exprs: nodePort})
	}
	post := d.conn.AddChain(&nftables.Chain{Name: "nat-postrouting", Table: d.table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	d.conn.FlushChain(post)
	lo := make([]byte, unix.IFNAMSIZ)
	copy(lo, "lo")
	d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: post, Exprs: []expr.Any{
		// Not what stays on this node (a backend on loopback): only what
		// leaves needs the node's address for its replies to come back.
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: lo},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(markMasquerade), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Masq{},
	}})
}

// writeFront writes a frontend's chains in the pending batch: its service
// chain anew, the chains of its backends, and the removal of the chains
// of backends it no longer has (old: what was programmed, or nil). It
// returns what it will be once the batch is accepted.
func (d *nftDataplane) writeFront(k frontKey, p *frontend, old *nftFront) *nftFront {
	svc := d.conn.AddChain(d.chain(svcChainName(k, p)))
	d.conn.FlushChain(svc) // first: its rules refer to the chains and sets dropped below
	timeout := time.Duration(p.config.PersistenceTimeout)
	f := &nftFront{front: p, eps: map[string]time.Duration{}}
	if old != nil {
		for addr, was := range old.eps {
			if !slices.ContainsFunc(p.backends, func(b servicemodel.Backend) bool { return b.Addr == addr }) {
				d.dropEndpoint(k, addr, was)
			}
		}
	}
	for _, b := range p.backends {
		f.eps[b.Addr] = timeout
		if old != nil {
			if was, ok := old.eps[b.Addr]; ok && was == timeout {
				continue // unchanged
			}
		}
		d.writeEndpoint(k, b.Addr, timeout, old)
	}
	for _, exprs := range d.serviceRules(k, p) {
		d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: svc, Exprs: exprs})
	}
	return f
}

// writeEndpoint fills a backend's chain: with affinity, remember the
// client (kube-proxy's nftables mode: `update @set { ip saddr }`), then
// DNAT to the backend.
func (d *nftDataplane) writeEndpoint(k frontKey, addr string, timeout time.Duration, old *nftFront) {
	ep := d.conn.AddChain(d.chain(epChainName(k, addr)))
	d.conn.FlushChain(ep)
	aff := &nftables.Set{Table: d.table, Name: affinitySetName(k, addr), KeyType: nftables.TypeIPAddr, HasTimeout: true, Dynamic: true}
	if was, ok := old.endpoint(addr); ok && was > 0 && timeout == 0 {
		d.conn.DelSet(aff)
	}
	var exprs []expr.Any
	if timeout > 0 {
		if err := d.conn.AddSet(aff, nil); err != nil { // an existing one keeps its clients
			d.log.Error("nftables: an affinity set", "backend", addr, "err", err)
		}
		exprs = append(exprs,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Dynset{SrcRegKey: 1, SetName: aff.Name, SetID: aff.ID, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: timeout})
	}
	d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: ep, Exprs: append(exprs, dnatTo(addr)...)})
}

func (f *nftFront) endpoint(addr string) (time.Duration, bool) {
	if f == nil {
		return 0, false
	}
	t, ok := f.eps[addr]
	return t, ok
}

func (d *nftDataplane) dropEndpoint(k frontKey, addr string, timeout time.Duration) {
	d.conn.DelChain(d.chain(epChainName(k, addr)))
	if timeout > 0 {
		d.conn.DelSet(&nftables.Set{Table: d.table, Name: affinitySetName(k, addr)})
	}
}

// serviceRules are a frontend's chain: the node-port mark; with
// affinity, a client one of the backends remembers goes back to it; the
// others get weighted random. With no backend the chain is empty: the
// packet goes on untranslated and is refused where it lands.
func (d *nftDataplane) serviceRules(k frontKey, p *frontend) [][]expr.Any {
	slots := weightSlots(p)
	if len(slots) == 0 {
		return nil
	}
	var rules [][]expr.Any
	if p.nodePort {
		rules = append(rules, []expr.Any{&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(markMasquerade)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}})
	}
	vmap := &nftables.Set{Table: d.table, Anonymous: true, Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeVerdict, KeyByteOrder: binaryutil.NativeEndian}
	var elems []nftables.SetElement
	affinity := p.config.PersistenceTimeout > 0
	for slot, i := range slots {
		addr := p.backends[i].Addr
		elems = append(elems, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(slot)),
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: epChainName(k, addr)}})
		if affinity && (slot == 0 || slots[slot-1] != i) {
			rules = append(rules, []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Lookup{SourceRegister: 1, SetName: affinitySetName(k, addr)},
				&expr.Verdict{Kind: expr.VerdictGoto, Chain: epChainName(k, addr)}})
		}
	}
	if err := d.conn.AddSet(vmap, elems); err != nil {
		d.log.Error("nftables: building a frontend's backend map", "service", p.service, "err", err)
		return nil
	}
	return append(rules, []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(len(slots)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, SetName: vmap.Name, SetID: vmap.ID, IsDestRegSet: true, DestRegister: 0}})
}

// weightSlots gives each backend that takes new traffic
// (servicemodel.Active: quiesced ones none, terminating ones only when no
// ready one has a weight) a number of slots proportional to its weight
// (at least one), at most maxSlots in all (or one each, when there are
// more backends than that); slot i belongs to backend slots[i].
func weightSlots(p *frontend) []int {
	var idx []int
	var total uint64
	for i, b := range p.backends {
		if servicemodel.Active(p.backends, b) {
			idx, total = append(idx, i), total+uint64(b.Info.Weight)
		}
	}
	var slots []int
	for _, i := range idx {
		n := uint64(p.backends[i].Info.Weight)
		if total > maxSlots {
			n = max(1, n*maxSlots/total)
		}
		for range n {
			slots = append(slots, i)
		}
	}
	return slots
}

func dnatTo(addr string) []expr.Any {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: net.ParseIP(host).To4()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(uint16(n))},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// removeFront takes a frontend out (its map element first, so no packet
// jumps to a chain being deleted), in the pending batch.
func (d *nftDataplane) removeFront(k frontKey, f *nftFront) {
	if set, key, ok := d.element(k); ok {
		d.conn.SetDeleteElements(set, []nftables.SetElement{{Key: key}})
	}
	svc := d.chain(svcChainName(k, f.front))
	d.conn.FlushChain(svc)
	for addr, timeout := range f.eps {
		d.dropEndpoint(k, addr, timeout)
	}
	d.conn.DelChain(svc)
}

// stop removes the table: nothing of the agent's stays in the kernel.
func (d *nftDataplane) stop() {
	d.conn.DelTable(d.table)
	if err := d.flush(); err != nil {
		d.log.Warn("removing the nftables table (svcreg proxy --cleanup removes it)", "err", err)
	}
}
