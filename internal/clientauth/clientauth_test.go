// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package clientauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7400": true, "localhost:7400": true, "[::1]:7400": true, "127.9.9.9": true,
		"0.0.0.0:7400": false, ":7400": false, "10.0.0.1:7400": false, "registry.internal:7400": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v", addr, got)
		}
	}
}

// TestNoPlaintextTokenOffLoopback: a token goes in plaintext only to
// loopback; elsewhere DialOptions refuses, naming the fix.
func TestNoPlaintextTokenOffLoopback(t *testing.T) {
	if _, err := (Config{Token: "svcr_x", NoEnv: true}).DialOptions("127.0.0.1:7400"); err != nil {
		t.Errorf("a token to loopback: %v", err)
	}
	_, err := (Config{Token: "svcr_x", NoEnv: true}).DialOptions("10.0.0.1:7400")
	if err == nil || !strings.Contains(err.Error(), "--cacert") {
		t.Errorf("a plaintext token to 10.0.0.1: %v, want a refusal naming --cacert", err)
	}
	if _, err := (Config{NoEnv: true}).DialOptions("10.0.0.1:7400"); err != nil {
		t.Errorf("no token, plaintext: %v", err)
	}
	if _, err := (Config{CAFile: "/nonexistent", NoEnv: true}).DialOptions("10.0.0.1:7400"); err == nil {
		t.Errorf("a CA file that does not exist was accepted")
	}
}

// TestTokenFileIsReadAgain: the token file's first line is the token, and
// a rewritten file is picked up on the next call.
func TestTokenFileIsReadAgain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	write := func(tok string, at time.Time) {
		if err := os.WriteFile(file, []byte(tok+"\ncomment\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(file, at, at)
	}
	now := time.Now()
	write("svcr_first", now)
	b := &bearer{file: file}
	for _, want := range []string{"svcr_first", "svcr_second"} {
		md, err := b.GetRequestMetadata(context.Background())
		if err != nil || md["authorization"] != "Bearer "+want {
			t.Errorf("metadata %v, %v; want Bearer %s", md, err, want)
		}
		write("svcr_second", now.Add(time.Minute))
	}
	write("", now.Add(2*time.Minute))
	if _, err := b.GetRequestMetadata(context.Background()); err == nil {
		t.Errorf("an empty token file was accepted")
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv(EnvToken, " svcr_env ")
	t.Setenv(EnvCACert, "/etc/ca.pem")
	c := Config{}.withEnv()
	if c.Token != "svcr_env" || c.CAFile != "/etc/ca.pem" {
		t.Errorf("from the environment: %+v", c)
	}
	if c := (Config{Token: "mine", NoEnv: true}).withEnv(); c.Token != "mine" || c.CAFile != "" {
		t.Errorf("NoEnv: %+v", c)
	}
}
