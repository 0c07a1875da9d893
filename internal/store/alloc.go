// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/svcreg/svcreg/internal/validation"
)

// maxRangeSize bounds the service CIDR (2^20 addresses: an IPv4 /12 or an
// IPv6 /108), as Kubernetes does, so a full scan stays cheap.
const maxRangeSize = 1 << 20

// IPRange is the range cluster IPs are allocated from: the prefix without
// its network address and, for IPv4, its broadcast address.
type IPRange struct {
	prefix netip.Prefix
	first  netip.Addr
	size   uint64
}

// ParseIPRange parses a service CIDR such as "10.96.0.0/16".
func ParseIPRange(cidr string) (IPRange, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return IPRange{}, fmt.Errorf("service CIDR %q: %v", cidr, err)
	}
	if p != p.Masked() {
		return IPRange{}, fmt.Errorf("service CIDR %q: host bits are set (did you mean %s?)", cidr, p.Masked())
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits > 20 {
		return IPRange{}, fmt.Errorf("service CIDR %q is too large: at most %d addresses (an IPv4 /12 or IPv6 /108)", cidr, maxRangeSize)
	}
	size := uint64(1) << hostBits
	// Skip the network address; IPv4 also loses its broadcast address.
	if p.Addr().Is4() {
		size -= 2
	} else {
		size--
	}
	if hostBits < 2 || size == 0 {
		return IPRange{}, fmt.Errorf("service CIDR %q is too small", cidr)
	}
	return IPRange{prefix: p, first: p.Addr().Next(), size: size}, nil
}

// String returns the CIDR.
func (r IPRange) String() string { return r.prefix.String() }

// Size is the number of allocatable addresses.
func (r IPRange) Size() uint64 { return r.size }

func (r IPRange) contains(a netip.Addr) bool {
	if !r.prefix.Contains(a) {
		return false
	}
	off, ok := r.offset(a)
	return ok && off < r.size
}

// offset of a from the first allocatable address; ok is false below it.
func (r IPRange) offset(a netip.Addr) (uint64, bool) {
	x, f := a.As16(), r.first.As16()
	xv, fv := binary.BigEndian.Uint64(x[8:]), binary.BigEndian.Uint64(f[8:])
	if xv < fv {
		return 0, false
	}
	return xv - fv, true
}

// addr returns the address at offset off (off < size): the host part of a
// range fits in the low 64 bits, so there is no carry to propagate.
func (r IPRange) addr(off uint64) netip.Addr {
	b := r.first.As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+off)
	a := netip.AddrFrom16(b)
	if r.first.Is4() {
		return a.Unmap()
	}
	return a
}

// PortRange is the node port range, such as 30000-32767.
type PortRange struct {
	Base, Size int
}

// ParsePortRange parses "30000-32767" (or a single port).
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return PortRange{}, fmt.Errorf("node port range %q: want FIRST-LAST within 1-65535", s)
	}
	return PortRange{Base: a, Size: b - a + 1}, nil
}

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Base, r.Base+r.Size-1) }

func (r PortRange) contains(p int32) bool { return int(p) >= r.Base && int(p) < r.Base+r.Size }

func ipAllocationKey(a netip.Addr) string { return "ip/" + a.String() }
func portAllocationKey(p int32) string    { return "port/" + strconv.Itoa(int(p)) }

// startOffset spreads allocations over the range deterministically (the
// same on every replica of the store): a hash of what is being allocated.
func startOffset(seed string, size uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(seed))
	return h.Sum64() % size
}

// allocateIPTxn takes an address for owner: want if set (it must be in range
// and free), else the first free one from a hashed start.
func (s *Store) allocateIPTxn(txn *memdb.Txn, owner string, want netip.Addr, field validation.Path) (netip.Addr, error) {
	r := s.cfg.ServiceIPs
	if want.IsValid() {
		if !r.contains(want) {
			return netip.Addr{}, validation.ErrorList{validation.Invalid(field, want.String(),
				fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", want, want, r))}
		}
		if err := s.claimTxn(txn, ipAllocationKey(want), owner); err != nil {
			return netip.Addr{}, validation.ErrorList{validation.Invalid(field, want.String(),
				fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", want))}
		}
		return want, nil
	}
	start := startOffset(owner, r.size)
	for i := uint64(0); i < r.size; i++ {
		a := r.addr((start + i) % r.size)
		if s.claimTxn(txn, ipAllocationKey(a), owner) == nil {
			return a, nil
		}
	}
	return netip.Addr{}, &Error{ErrRangeFull, "failed to allocate a service IP: range is full"}
}

// allocatePortTxn takes a node port for owner, as allocateIPTxn. An owner
// may reuse its own port (one node port for TCP and UDP of one service).
func (s *Store) allocatePortTxn(txn *memdb.Txn, owner string, want int32, seed string, field validation.Path) (int32, error) {
	r := s.cfg.NodePorts
	if want != 0 {
		if !r.contains(want) {
			return 0, validation.ErrorList{validation.Invalid(field, want,
				fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", r))}
		}
		if err := s.claimTxn(txn, portAllocationKey(want), owner); err != nil {
			return 0, validation.ErrorList{validation.Invalid(field, want, "provided port is already allocated")}
		}
		return want, nil
	}
	start := startOffset(seed, uint64(r.Size))
	for i := uint64(0); i < uint64(r.Size); i++ {
		p := int32(r.Base + int((start+i)%uint64(r.Size)))
		if existing, _ := txn.First(tableAllocations, indexID, portAllocationKey(p)); existing != nil {
			continue
		}
		if s.claimTxn(txn, portAllocationKey(p), owner) == nil {
			return p, nil
		}
	}
	return 0, &Error{ErrRangeFull, "failed to allocate a node port: range is full"}
}

var errTaken = fmt.Errorf("taken")

// claimTxn records key as owner's; it fails when another owner holds it.
func (s *Store) claimTxn(txn *memdb.Txn, key, owner string) error {
	existing, err := txn.First(tableAllocations, indexID, key)
	if err != nil {
		return err
	}
	if existing != nil {
		if existing.(*allocation).Owner == owner {
			return nil
		}
		return errTaken
	}
	return txn.Insert(tableAllocations, &allocation{Key: key, Owner: owner})
}

// releaseAllTxn frees everything owner holds except the keys in keep.
func releaseAllTxn(txn *memdb.Txn, owner string, keep map[string]bool) error {
	it, err := txn.Get(tableAllocations, indexOwner, owner)
	if err != nil {
		return err
	}
	var drop []*allocation
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if a := obj.(*allocation); !keep[a.Key] {
			drop = append(drop, a)
		}
	}
	for _, a := range drop {
		if err := txn.Delete(tableAllocations, a); err != nil {
			return err
		}
	}
	return nil
}
