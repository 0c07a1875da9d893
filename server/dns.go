// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/miekg/dns"
)

// dnsServers is the DNS frontend: UDP and TCP on one port.
type dnsServers struct {
	udp, tcp *dns.Server
	addr     string
}

// listenDNS binds TCP, then UDP on the same port. With port 0 the kernel
// picks TCP's; when that port is taken for UDP it tries again with another,
// so a test never races another process for a port picked in advance.
func listenDNS(addr string, handler dns.Handler) (*dnsServers, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("DNS address %q: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("DNS TCP listener: %w", err)
		}
		pc, err := net.ListenPacket("udp", lis.Addr().String())
		if err != nil {
			lis.Close()
			if port == "0" && attempt < 100 && errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			return nil, fmt.Errorf("DNS UDP listener: %w", err)
		}
		return &dnsServers{
			udp:  &dns.Server{PacketConn: pc, Handler: handler},
			tcp:  &dns.Server{Listener: lis, Handler: handler},
			addr: lis.Addr().String(),
		}, nil
	}
}

func (d *dnsServers) serve(errc chan<- error) {
	go func() {
		if err := d.udp.ActivateAndServe(); err != nil {
			errc <- fmt.Errorf("DNS over UDP: %w", err)
		}
	}()
	go func() {
		if err := d.tcp.ActivateAndServe(); err != nil {
			errc <- fmt.Errorf("DNS over TCP: %w", err)
		}
	}()
}

func (d *dnsServers) shutdown(ctx context.Context) {
	d.udp.ShutdownContext(ctx)
	d.tcp.ShutdownContext(ctx)
}

func (d *dnsServers) close() {
	d.udp.PacketConn.Close()
	d.tcp.Listener.Close()
}
