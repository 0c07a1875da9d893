package proxy

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/svcreg/svcreg/balancer"
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
//	  chain svc-<n>-<ns>/<name>/<proto>/<port> { [meta mark set 0x4000]
//	    [ip saddr @aff-<m>-<backend> goto ep-<m>-<backend>, for each backend]
//	    numgen random mod W vmap { 0 : goto ep-<m>-<backend>, ... } }
//	  chain ep-<m>-<ip>/<port> { [update @aff-<m>-<ip>/<port> { ip saddr }] dnat to backend }
//	  set aff-<m>-<ip>/<port> { type ipv4_addr; flags dynamic,timeout }   (ClientIP affinity)
//
// A backend of weight w has w of the W slots (weights scaled to at most
// 1,024 slots), which is the kernel's weighted random choice. Each sync is
// one netlink batch (one transaction): only the frontends that changed
// are rewritten, and the maps are edited element by element.
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

	fronts map[frontKey]*nftFront
	names  int // chains named so far
}

type nftFront struct {
	front *frontend
	chain *nftables.Chain
	eps   map[string]*nftEndpoint // by backend address
}

// nftEndpoint is a backend's chain, named after its address so that it
// (and the clients its affinity set remembers) outlives other backends'
// changes.
type nftEndpoint struct {
	chain    *nftables.Chain
	affinity *nftables.Set // with ClientIP affinity: the clients it has, each for the timeout
	timeout  time.Duration
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
	d := &nftDataplane{log: cfg.Logger, conn: conn, fronts: map[frontKey]*nftFront{}}
	if err := d.setup(); err != nil {
		return nil, fmt.Errorf("%w: nftables mode: the kernel refused the table (is nf_tables with NAT available?): %v; try --mode userspace", ErrCannotRun, err)
	}
	return d, nil
}

// Cleanup removes the agent's table, if there is one (after a crash).
func Cleanup() error {
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

// setup replaces any table of ours a crash left with a fresh one holding
// the hooks and the empty frontends map, in one transaction.
func (d *nftDataplane) setup() error {
	d.table = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nftTable}
	d.conn.AddTable(d.table)
	d.conn.DelTable(d.table) // add-then-delete: no error when it did not exist
	d.conn.AddTable(d.table)
	d.set = &nftables.Set{Table: d.table, Name: "frontends", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.TypeVerdict}
	d.nodePorts = &nftables.Set{Table: d.table, Name: "node-ports", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.TypeVerdict}
	for _, set := range []*nftables.Set{d.set, d.nodePorts} {
		if err := d.conn.AddSet(set, nil); err != nil {
			return err
		}
	}
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
		d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: c, Exprs: lookup})
		d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: c, Exprs: nodePort})
	}
	post := d.conn.AddChain(&nftables.Chain{Name: "nat-postrouting", Table: d.table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
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
	return d.conn.Flush()
}

// chainName names a new chain: unique by a counter (the table is new at
// each start), readable after it, as kube-proxy's chains are:
// svc-3-shop/files/tcp/80, ep-4-127.0.0.1/8080.
func (d *nftDataplane) chainName(kind, what string) string {
	d.names++
	return fmt.Sprintf("%s-%d-%s", kind, d.names, strings.ReplaceAll(what, ":", "/"))
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

func (d *nftDataplane) sync(planned map[frontKey]*frontend) error {
	for k, f := range d.fronts {
		if _, ok := planned[k]; !ok {
			d.remove(k, f)
		}
	}
	for k, p := range planned {
		set, key, ok := d.element(k)
		if !ok {
			d.log.Warn("nftables mode programs IPv4 frontends only; not proxied", "frontend", k.String(), "service", p.service)
			continue
		}
		if f, ok := d.fronts[k]; ok && sameBackends(f.front, p) {
			continue
		}
		d.program(k, set, key, p)
	}
	return d.conn.Flush()
}

// program writes a frontend's chains and its map element, in the pending
// batch: its service chain anew, and the chains of backends that came,
// went or changed affinity.
func (d *nftDataplane) program(k frontKey, set *nftables.Set, key []byte, p *frontend) {
	f, existed := d.fronts[k]
	if !existed {
		what := p.service + "/" + k.proto + "/" + p.port
		if p.nodePort {
			what += "/node-port"
		}
		f = &nftFront{chain: d.conn.AddChain(&nftables.Chain{Name: d.chainName("svc", what), Table: d.table}), eps: map[string]*nftEndpoint{}}
	} else {
		d.conn.FlushChain(f.chain) // first: its rules refer to the chains and sets dropped below
	}
	timeout := time.Duration(p.config.PersistenceTimeout)
	for addr, ep := range f.eps {
		if !slices.ContainsFunc(p.backends, func(b balancer.ConnBackend) bool { return b.Addr == addr }) {
			d.dropEndpoint(ep)
			delete(f.eps, addr)
		}
	}
	for _, b := range p.backends {
		ep := f.eps[b.Addr]
		switch {
		case ep == nil:
			ep = &nftEndpoint{chain: d.conn.AddChain(&nftables.Chain{Name: d.chainName("ep", b.Addr), Table: d.table})}
			f.eps[b.Addr] = ep
		case ep.timeout == timeout:
			continue
		default:
			d.conn.FlushChain(ep.chain)
		}
		d.endpointRule(ep, b.Addr, timeout)
	}
	for _, exprs := range d.serviceRules(p, f) {
		d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: f.chain, Exprs: exprs})
	}
	if !existed {
		d.conn.SetAddElements(set, []nftables.SetElement{{Key: key, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: f.chain.Name}}})
	}
	if s := p.config.Scheduler; s != "rr" && s != "wrr" {
		d.log.Info("nftables mode schedules by weighted random: the service's scheduler applies in userspace mode only",
			"service", p.service, "port", p.port, "scheduler", s)
	}
	f.front = p
	d.fronts[k] = f
}

// endpointRule fills a backend's chain: with affinity, remember the
// client (kube-proxy's nftables mode: `update @set { ip saddr }`), then
// DNAT to the backend.
func (d *nftDataplane) endpointRule(ep *nftEndpoint, addr string, timeout time.Duration) {
	if ep.affinity != nil && timeout == 0 {
		d.conn.DelSet(ep.affinity)
		ep.affinity = nil
	}
	var exprs []expr.Any
	if timeout > 0 {
		if ep.affinity == nil {
			ep.affinity = &nftables.Set{Table: d.table, Name: "aff-" + strings.TrimPrefix(ep.chain.Name, "ep-"),
				KeyType: nftables.TypeIPAddr, HasTimeout: true, Dynamic: true}
			if err := d.conn.AddSet(ep.affinity, nil); err != nil {
				d.log.Error("nftables: an affinity set", "backend", addr, "err", err)
			}
		}
		exprs = append(exprs,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Dynset{SrcRegKey: 1, SetName: ep.affinity.Name, SetID: ep.affinity.ID, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: timeout})
	}
	ep.timeout = timeout
	d.conn.AddRule(&nftables.Rule{Table: d.table, Chain: ep.chain, Exprs: append(exprs, dnatTo(addr)...)})
}

func (d *nftDataplane) dropEndpoint(ep *nftEndpoint) {
	d.conn.DelChain(ep.chain)
	if ep.affinity != nil {
		d.conn.DelSet(ep.affinity)
	}
}

// serviceRules are a frontend's chain: the node-port mark; with
// affinity, a client one of the backends remembers goes back to it; the
// others get weighted random. With no backend the chain is empty: the
// packet goes on untranslated and is refused where it lands.
func (d *nftDataplane) serviceRules(p *frontend, f *nftFront) [][]expr.Any {
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
	for slot, i := range slots {
		ep := f.eps[p.backends[i].Addr]
		elems = append(elems, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(slot)),
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: ep.chain.Name}})
		if ep.affinity != nil && (slot == 0 || slots[slot-1] != i) {
			rules = append(rules, []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Lookup{SourceRegister: 1, SetName: ep.affinity.Name, SetID: ep.affinity.ID},
				&expr.Verdict{Kind: expr.VerdictGoto, Chain: ep.chain.Name}})
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

// weightSlots gives each backend a number of slots proportional to its
// weight (at least one for a non-zero weight), at most maxSlots in all
// (or one each, when there are more backends than that);
// slot i belongs to backend slots[i]. Terminating backends get slots only
// when no ready one has any (KEP-1669), quiesced ones (weight 0) none.
func weightSlots(p *frontend) []int {
	pick := func(terminating bool) (idx []int, total uint64) {
		for i, b := range p.backends {
			if b.Info.Weight > 0 && b.Info.Terminating == terminating {
				idx, total = append(idx, i), total+uint64(b.Info.Weight)
			}
		}
		return idx, total
	}
	idx, total := pick(false)
	if len(idx) == 0 {
		idx, total = pick(true)
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

// remove takes a frontend out (its map element first, so no packet jumps
// to a chain being deleted), in the pending batch.
func (d *nftDataplane) remove(k frontKey, f *nftFront) {
	if set, key, ok := d.element(k); ok {
		d.conn.SetDeleteElements(set, []nftables.SetElement{{Key: key}})
	}
	d.conn.FlushChain(f.chain)
	for _, ep := range f.eps {
		d.dropEndpoint(ep)
	}
	d.conn.DelChain(f.chain)
	delete(d.fronts, k)
}

// stop removes the table: nothing of the agent's stays in the kernel.
func (d *nftDataplane) stop() {
	d.conn.DelTable(d.table)
	if err := d.conn.Flush(); err != nil {
		d.log.Warn("removing the nftables table (svcreg proxy --cleanup removes it)", "err", err)
	}
}
