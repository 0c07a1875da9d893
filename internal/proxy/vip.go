package proxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
)

// vips puts cluster IPs on an interface (lo by default), so that the
// userspace data plane can bind them: a /32 (or /128) per address, added
// over netlink when first needed and removed when its last service goes
// or the agent stops. Addresses the interface had before are left alone.
type vips struct {
	iface string

	mu    sync.Mutex
	link  netlink.Link
	added map[string]bool // the addresses this agent added
}

func newVIPs(iface string) (*vips, error) {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("--vip-interface %q: %w", iface, err)
	}
	return &vips{iface: iface, link: link, added: map[string]bool{}}, nil
}

func hostNet(ip net.IP) *net.IPNet {
	if ip4 := ip.To4(); ip4 != nil {
		return &net.IPNet{IP: ip4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
}

// ensure makes the interface hold exactly the wanted addresses among
// those this agent manages.
func (v *vips) ensure(want map[string]bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var errs []error
	for ip := range want {
		if v.added[ip] {
			continue
		}
		parsed := net.ParseIP(ip)
		if parsed == nil {
			continue
		}
		err := netlink.AddrAdd(v.link, &netlink.Addr{IPNet: hostNet(parsed)})
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

// clear removes every address this agent added.
func (v *vips) clear() error { return v.ensure(nil) }
