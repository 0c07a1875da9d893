// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package reservedports keeps a test server's ports its own across a
// restart (test support; it imports testing).
package reservedports

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// A restarted server binds the ports its first start (on port 0) read
// back: a Raft member's address is part of the cluster's configuration,
// and clients dial the same address again. Meanwhile the kernel may hand
// a freed port to any new socket (an outgoing connection's local port,
// another test's listener), and the restart fails with "address already
// in use". As root, the tests reserve their servers' ports
// (net.ipv4.ip_local_reserved_ports): the kernel then never assigns them
// automatically, while an explicit bind still takes them.

const reservedPorts = "/proc/sys/net/ipv4/ip_local_reserved_ports"

var reserveMu sync.Mutex // this process's read-modify-writes of the list

// Reserve reserves the ports of addrs until the test ends (a no-op when
// not root).
func Reserve(t testing.TB, addrs ...string) {
	var ports []string
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err == nil && port != "0" {
			ports = append(ports, port)
		}
	}
	if os.Geteuid() != 0 || len(ports) == 0 {
		return
	}
	editReserved(t, func(list []string) []string { return append(list, ports...) })
	t.Cleanup(func() {
		editReserved(t, func(list []string) []string {
			return slices.DeleteFunc(list, func(p string) bool { return slices.Contains(ports, p) })
		})
	})
}

// editReserved rewrites the reserved list, under a lock other test
// processes take too.
func editReserved(t testing.TB, edit func([]string) []string) {
	reserveMu.Lock()
	defer reserveMu.Unlock()
	lock, err := os.OpenFile(os.TempDir()+"/svcreg-tests-reserved-ports.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Logf("reserving ports: %v", err)
		return
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Logf("reserving ports: %v", err)
		return
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	b, err := os.ReadFile(reservedPorts)
	if err != nil {
		t.Logf("reserving ports: %v", err)
		return
	}
	var list []string
	for _, f := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if f = strings.TrimSpace(f); f != "" {
			list = append(list, f)
		}
	}
	list = edit(list)
	slices.SortFunc(list, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	if err := os.WriteFile(reservedPorts, []byte(strings.Join(slices.Compact(list), ",")+"\n"), 0o644); err != nil {
		t.Logf("reserving ports: %v", err)
	}
}
