// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// vips puts cluster IPs on an interface (lo by default), so that the
// userspace data plane can bind them and so that, in nftables mode, a
// connection from the node itself to a cluster IP has a route (a local
// one) before the output hook translates it, with no default route
// needed (kube-proxy's IPVS mode binds them to a dummy interface for the
// same reason). A /32 (or /128) per address, added over netlink when
// first needed and removed when its last service goes or the agent stops.
//
// Every address the agent adds carries its own address protocol
// (IFA_PROTO, `ip -d addr` shows "proto 0x53"), so the kernel itself says
// which addresses are the agent's: a new agent, or `svcreg proxy
// --cleanup`, removes those a killed one left, and addresses the
// interface had from anyone else are never touched.
type vips struct {
	iface string

	mu    sync.Mutex
	link  netlink.Link
	added map[string]bool // the addresses this agent owns on the interface
}

// ifaProto is the IFA_PROTO attribute (linux/if_addr.h; kernel 5.18+) and
// the value that marks svcreg's addresses.
const (
	ifaProto      = 11
	ifaProtoOwned = 0x53
)

func newVIPs(iface string) (*vips, error) {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("--vip-interface %q: %w", iface, err)
	}
	v := &vips{iface: iface, link: link, added: map[string]bool{}}
	if err := v.relist(); err != nil {
		return nil, err
	}
	return v, nil
}

// relist learns from the kernel which addresses of the interface are the
// agent's (a killed agent's included).
func (v *vips) relist() error {
	owned, err := ownedAddrs(v.link.Attrs().Index)
	if err != nil {
		return fmt.Errorf("listing the addresses of %s: %w", v.iface, err)
	}
	clear(v.added)
	for _, ip := range owned {
		v.added[ip.String()] = true
	}
	return nil
}

func hostNet(ip net.IP) *net.IPNet {
	if ip4 := ip.To4(); ip4 != nil {
		return &net.IPNet{IP: ip4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
}

// ensure makes the interface hold exactly the wanted addresses among
// those this agent owns. full first asks the kernel what is there (an
// address someone removed is added again).
func (v *vips) ensure(want map[string]bool, full bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if full {
		if err := v.relist(); err != nil {
			return err
		}
	}
	var errs []error
	for ip := range want {
		if v.added[ip] {
			continue
		}
		parsed := net.ParseIP(ip)
		if parsed == nil {
			continue
		}
		err := addOwned(v.link.Attrs().Index, parsed)
		switch {
		case errors.Is(err, syscall.EEXIST):
			// Already there (put by someone else): use it, never remove it.
		case err != nil:
			errs = append(errs, fmt.Errorf("adding %s to %s: %w", ip, v.iface, err))
		default:
			v.added[ip] = true
		}
	}
	for ip := range v.added {
		if !want[ip] {
			if err := netlink.AddrDel(v.link, &netlink.Addr{IPNet: hostNet(net.ParseIP(ip))}); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("removing %s from %s: %w", ip, v.iface, err))
				continue
			}
			delete(v.added, ip)
		}
	}
	return errors.Join(errs...)
}

// clear removes every address this agent owns on the interface.
func (v *vips) clear() error { return v.ensure(nil, true) }

// addOwned adds ip/32 (or /128) to the link, marked as the agent's.
// netlink.AddrAdd cannot set IFA_PROTO, so the request is built here.
func addOwned(index int, ip net.IP) error {
	family, data, bits := unix.AF_INET6, ip.To16(), 128
	if ip4 := ip.To4(); ip4 != nil {
		family, data, bits = unix.AF_INET, ip4, 32
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(index)
	msg.Prefixlen = uint8(bits)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, data))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, data))
	req.AddData(nl.NewRtAttr(ifaProto, []byte{ifaProtoOwned}))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// ownedAddrs lists the addresses marked as the agent's on the link with
// that index, or on every link when index is 0.
func ownedAddrs(index int) ([]net.IP, error) {
	var out []net.IP
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfAddrmsg(family))
		msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, err
		}
		for _, m := range msgs {
			ip, link, owned := parseAddrMsg(m)
			if owned && (index == 0 || link == index) {
				out = append(out, ip)
			}
		}
	}
	return out, nil
}

// parseAddrMsg reads an RTM_NEWADDR message: the address, its link, and
// whether it carries the agent's mark.
func parseAddrMsg(m []byte) (net.IP, int, bool) {
	if len(m) < unix.SizeofIfAddrmsg {
		return nil, 0, false
	}
	msg := nl.DeserializeIfAddrmsg(m)
	attrs, err := nl.ParseRouteAttr(m[msg.Len():])
	if err != nil {
		return nil, 0, false
	}
	var ip net.IP
	owned := false
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_LOCAL:
			ip = net.IP(slices.Clone(a.Value))
		case unix.IFA_ADDRESS:
			if ip == nil {
				ip = net.IP(slices.Clone(a.Value))
			}
		case ifaProto:
			owned = len(a.Value) == 1 && a.Value[0] == ifaProtoOwned
		}
	}
	return ip, int(msg.Index), owned && ip != nil
}

// removeOwnedAddrs removes every address on any link that carries the
// agent's mark (svcreg proxy --cleanup).
func removeOwnedAddrs() error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		owned, err := ownedAddrs(l.Attrs().Index)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ip := range owned {
			if err := netlink.AddrDel(l, &netlink.Addr{IPNet: hostNet(ip)}); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("removing %s from %s: %w", ip, l.Attrs().Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
