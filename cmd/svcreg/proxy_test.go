// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestProxyRefusesWithoutNetAdmin: without CAP_NET_ADMIN, `svcreg proxy`
// exits at once naming the capability and what else to run, having
// programmed nothing (it fails before it reaches the registry).
func TestProxyRefusesWithoutNetAdmin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: drops to nobody with setpriv to lose CAP_NET_ADMIN (CI runs as root)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	out, err := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", binary, "proxy", "--registry", "127.0.0.1:1").CombinedOutput()
	if err == nil {
		t.Fatalf("svcreg proxy ran without CAP_NET_ADMIN:\n%s", out)
	}
	for _, want := range []string{"CAP_NET_ADMIN", "--vip-interface -"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
}
