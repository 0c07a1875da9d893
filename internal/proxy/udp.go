// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"
)

// maxDatagram is the largest UDP payload proxied (kube-proxy's userspace
// mode used 4 KiB buffers and truncated larger datagrams).
const maxDatagram = 64 << 10

// udpFlows is a frontend's UDP "connections": one per client address,
// each with its own socket connected to the backend picked for it, ended
// after an idle time. Their number is bounded.
type udpFlows struct {
	limits Limits
	log    *slog.Logger

	mu    sync.Mutex
	flows map[string]*udpFlow
	full  time.Time // when the bound was last logged
}

type udpFlow struct {
	backend *net.UDPConn
	done    func()
	last    time.Time // guarded by udpFlows.mu
}

func newUDPFlows(l Limits, log *slog.Logger) *udpFlows {
	return &udpFlows{limits: l, log: log, flows: map[string]*udpFlow{}}
}

// serveUDP reads a frontend's datagrams and forwards each to its client's
// flow, opening one for a new client; replies go back from the frontend
// address. It ends when the frontend closes.
func (u *userspace) serveUDP(f *usFront) {
	stopSweep := make(chan struct{})
	defer close(stopSweep)
	go f.flows.sweep(stopSweep)
	defer f.flows.closeAll()
	buf := make([]byte, maxDatagram)
	for {
		n, client, err := f.pc.ReadFrom(buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			continue
		}
		flow := f.flows.get(u, f, client)
		if flow != nil {
			flow.backend.Write(buf[:n])
		}
	}
}

// get returns client's flow, opening it (and its reply loop) if new.
func (fl *udpFlows) get(u *userspace, f *usFront, client net.Addr) *udpFlow {
	key := client.String()
	fl.mu.Lock()
	if flow, ok := fl.flows[key]; ok {
		flow.last = time.Now()
		fl.mu.Unlock()
		return flow
	}
	if len(fl.flows) >= fl.limits.UDPFlows {
		if time.Since(fl.full) > time.Minute {
			fl.full = time.Now()
			fl.log.Warn("the UDP flow bound is reached: datagrams from new clients are dropped until flows go idle (--max-udp-flows)",
				"frontend", f.front.key.String(), "max_udp_flows", fl.limits.UDPFlows)
		}
		fl.mu.Unlock()
		return nil
	}
	fl.mu.Unlock()
	conn, done, err := u.dial(context.Background(), f, "udp", clientHost(client))
	if err != nil {
		u.log.Info("no backend for a UDP client", "frontend", f.front.key.String(), "client", key, "err", err)
		return nil
	}
	flow := &udpFlow{backend: conn.(*net.UDPConn), done: done, last: time.Now()}
	fl.mu.Lock()
	if other, ok := fl.flows[key]; ok { // opened meanwhile
		fl.mu.Unlock()
		conn.Close()
		done()
		return other
	}
	fl.flows[key] = flow
	fl.mu.Unlock()
	go fl.replies(f, flow, client, key)
	return flow
}

// replies copies a flow's backend datagrams back to its client until the
// flow's socket closes (idle, or the frontend went).
func (fl *udpFlows) replies(f *usFront, flow *udpFlow, client net.Addr, key string) {
	defer fl.end(key, flow)
	buf := make([]byte, maxDatagram)
	for {
		n, err := flow.backend.Read(buf)
		if err != nil {
			return
		}
		fl.mu.Lock()
		flow.last = time.Now()
		fl.mu.Unlock()
		if _, err := f.pc.WriteTo(buf[:n], client); err != nil && isClosed(err) {
			return
		}
	}
}

func (fl *udpFlows) end(key string, flow *udpFlow) {
	fl.mu.Lock()
	if fl.flows[key] == flow {
		delete(fl.flows, key)
	}
	fl.mu.Unlock()
	flow.backend.Close()
	flow.done()
}

// sweep ends the flows idle longer than the idle time.
func (fl *udpFlows) sweep(stop <-chan struct{}) {
	t := time.NewTicker(max(fl.limits.UDPIdle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fl.mu.Lock()
			for _, flow := range fl.flows {
				if time.Since(flow.last) > fl.limits.UDPIdle {
					flow.backend.Close() // its reply loop ends it
				}
			}
			fl.mu.Unlock()
		}
	}
}

func (fl *udpFlows) closeAll() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, flow := range fl.flows {
		flow.backend.Close()
	}
}
