// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netns is a network namespace the test made, with loopback up and a veth
// pair (both ends inside) holding addr: an address that is not loopback,
// which the test can bind without touching the machine's own interfaces.
func netns(t *testing.T, addr string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace (CI runs as root)")
	}
	name := fmt.Sprintf("svcreg-expose-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	run("-n", name, "link", "set", "lo", "up")
	run("-n", name, "link", "add", "expose0", "type", "veth", "peer", "name", "expose1")
	run("-n", name, "addr", "add", addr+"/24", "dev", "expose0")
	run("-n", name, "link", "set", "expose0", "up")
	run("-n", name, "link", "set", "expose1", "up")
	return name
}

// TestNonLoopbackBindNeedsTLS runs `svcreg serve --grpc-addr` on an
// address that is not loopback, in a namespace of its own: without TLS it
// refuses to start and names the flags to add; with TLS (auth turns on)
// it serves; with --insecure-expose it serves and warns.
func TestNonLoopbackBindNeedsTLS(t *testing.T) {
	const addr = "10.231.0.1"
	ns := netns(t, addr)
	tls := tlsFlags(t)
	for _, tt := range []struct {
		name  string
		flags []string
		want  string // in the output
		serve bool
	}{
		{"plaintext", nil, "--tls-cert FILE --tls-key FILE", false},
		{"TLS", append(append([]string{}, tls[:4]...), "--bootstrap-token-file", testTokenFile), `auth=true tls=true`, true},
		{"--insecure-expose", []string{"--insecure-expose"}, "--insecure-expose: ports that are not loopback serve without TLS", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"netns", "exec", ns, binary, "serve", "--grpc-addr", addr + ":7400", "--http-addr", "-", "--dns-addr", "-"}, tt.flags...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ip", args...)
			log := filepath.Join(t.TempDir(), "serve.log")
			f, err := os.Create(log)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.Stdout, cmd.Stderr = f, f
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var out string
			poll(t, "the server to start or refuse", 25*time.Second, func() bool {
				b, _ := os.ReadFile(log)
				out = string(b)
				select {
				case err := <-exited:
					exited <- err
					return true
				default:
				}
				return strings.Contains(out, "svcreg serving") && strings.Contains(out, tt.want)
			})
			select {
			case err := <-exited:
				if tt.serve || err == nil {
					t.Fatalf("exited (%v), want it serving:\n%s", err, out)
				}
			default:
				if !tt.serve {
					t.Fatalf("serving, want a refusal:\n%s", out)
				}
				cmd.Process.Kill()
				<-exited
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("the output does not say %q:\n%s", tt.want, out)
			}
		})
	}
}
