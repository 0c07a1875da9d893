// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcreg/svcreg/internal/clock/clocktest"
	"github.com/svcreg/svcreg/server"
)

var update = flag.Bool("update", false, "rewrite the console's golden files")

// startConsoleRegistry starts a registry on loopback whose clock stands
// still, so ages and leases print the same on every run.
func startConsoleRegistry(t *testing.T) (addr string, clock *clocktest.Fake) {
	t.Helper()
	clock = clocktest.NewAt(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	srv := runRegistry(t, server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-", Clock: clock})
	consoleNow = clock.Now
	t.Cleanup(func() { consoleNow = time.Now })
	return srv.GRPCAddr(), clock
}

// runRegistry starts a registry in this process, stopped when the test
// ends, and waits until it serves.
func runRegistry(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.ShutdownTimeout = time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	wait, cancelWait := context.WithTimeout(context.Background(), 30*time.Second) // a bound, not a wait
	defer cancelWait()
	if err := srv.Ready(wait); err != nil {
		t.Fatalf("the registry did not catch up: %v", err)
	}
	return srv
}

// consoleRun runs one console command in this process: its stdout and
// stderr, as a person sees them, and its exit status.
func consoleRun(t *testing.T, addr string, input string, args ...string) (string, int) {
	t.Helper()
	stdin = strings.NewReader(input)
	defer func() { stdin = os.Stdin }()
	var out bytes.Buffer
	code := runConsole(context.Background(), args[0], append(args[1:], "--addr", addr), &out, &out)
	return out.String(), code
}

const corpus = "../../internal/manifest/testdata/kubernetes"

// TestConsoleGolden: each step's output is its golden file's
// (go test ./cmd/svcreg -run TestConsoleGolden -update rewrites them).
func TestConsoleGolden(t *testing.T) {
	addr, clock := startConsoleRegistry(t)
	instances := `apiVersion: svcreg.io/v1
kind: Instance
name: web-1
namespace: shop
ip: 10.0.1.1
labels: {app: web}
ports: [{name: http, port: 8080}]
zone: eu-west-1a
---
apiVersion: svcreg.io/v1
kind: Instance
name: web-2
namespace: shop
ip: 10.0.1.2
ttlSeconds: 30
weight: 3
labels: {app: web}
ports: [{name: http, port: 8080}]
`
	steps := []struct {
		golden string
		input  string
		args   []string
		code   int
	}{
		{"apply-corpus", "", []string{"apply", "-f", corpus}, 0},
		{"apply-again", "", []string{"apply", "-f", corpus}, 0},
		{"get-services-all", "", []string{"get", "services", "-A"}, 0},
		{"get-services-wide", "", []string{"get", "svc", "-n", "edge", "-o", "wide"}, 0},
		{"get-endpoints", "", []string{"get", "endpoints", "-n", "ops"}, 0},
		{"apply-instances", instances, []string{"apply", "-f", "-"}, 0},
		{"drain", "", []string{"drain", "web-1", "-n", "shop"}, 0},
		{"get-instances", "", []string{"get", "instances", "-n", "shop"}, 0},
		{"get-jsonpath", "", []string{"get", "svc", "-A", "-o", `jsonpath={range .items[*]}{.namespace}/{.name} {.clusterIp}{"\n"}{end}`}, 0},
		{"get-jsonpath-one", "", []string{"get", "svc", "web", "-n", "shop", "-o", "jsonpath={.ports[0].port}"}, 0},
		{"get-custom-columns", "", []string{"get", "instances", "-n", "shop", "-o", "custom-columns=NAME:.name,IP:.ip,ZONE:.zone,PORTS:.ports[*].port"}, 0},
		{"get-bad-jsonpath", "", []string{"get", "svc", "-o", "jsonpath={.items[*"}, 1},
		{"get-show-labels", "", []string{"get", "svc", "-A", "--show-labels"}, 0},
		{"get-namespaces", "", []string{"get", "namespaces"}, 0},
		{"describe-service", "", []string{"describe", "service", "web", "-n", "shop"}, 0},
		{"describe-instance", "", []string{"describe", "instance", "web-2", "-n", "shop"}, 0},
		{"undrain", "", []string{"undrain", "web-1", "-n", "shop"}, 0},
		{"get-name", "", []string{"get", "svc", "-n", "shop", "-o", "name"}, 0},
		{"dry-run", "apiVersion: svcreg.io/v1\nkind: Service\nname: new\nnamespace: shop\nports: [{port: 80}]\n", []string{"apply", "--dry-run", "-f", "-"}, 0},
		{"dry-run-leaves-nothing", "", []string{"get", "svc", "new", "-n", "shop"}, 1},
		{"get-missing", "", []string{"get", "svc", "nope"}, 1},
		{"get-unknown-kind", "", []string{"get", "pods"}, 1},
		{"get-bad-output", "", []string{"get", "svc", "-o", "table"}, 1},
		{"apply-invalid", "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\nspec: {ports: [{port: 80}]}\n", []string{"apply", "-f", "-"}, 1},
		{"delete-file", "", []string{"delete", "-f", corpus + "/multi.yaml"}, 0},
		{"delete-missing", "", []string{"delete", "service", "gateway", "-n", "edge"}, 1},
		{"delete-ignore-missing", "", []string{"delete", "service", "gateway", "-n", "edge", "--ignore-not-found"}, 0},
	}
	for _, step := range steps {
		clock.Advance(time.Second) // each step a second after the last: ages and leases move
		got, code := consoleRun(t, addr, step.input, step.args...)
		if code != step.code {
			t.Errorf("%s: exit %d, want %d\n%s", step.golden, code, step.code, got)
		}
		golden(t, step.golden, "$ svcreg "+strings.Join(step.args, " ")+"\n"+got)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "console", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/svcreg -run TestConsole -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// TestYAMLRoundTrip: what get -o yaml prints, apply takes back: unchanged
// as it is, configured once edited, and it recreates a deleted object.
func TestYAMLRoundTrip(t *testing.T) {
	addr, _ := startConsoleRegistry(t)
	if out, code := consoleRun(t, addr, "", "apply", "-f", corpus+"/list.yaml"); code != 0 {
		t.Fatal(out)
	}
	for _, format := range []string{"yaml", "json"} {
		printed, code := consoleRun(t, addr, "", "get", "services", "-n", "shop", "-o", format)
		if code != 0 {
			t.Fatal(printed)
		}
		if out, _ := consoleRun(t, addr, printed, "apply", "-f", "-"); out != "service/db unchanged\nservice/web unchanged\n" {
			t.Errorf("%s: re-applying get's output: %q", format, out)
		}
		edited := strings.Replace(printed, "storefront", "checkout", 1)
		if out, _ := consoleRun(t, addr, edited, "apply", "-f", "-"); out != "service/db unchanged\nservice/web configured\n" {
			t.Errorf("%s: applying an edit: %q", format, out)
		}
		if out, code := consoleRun(t, addr, "", "delete", "service", "web", "-n", "shop"); code != 0 {
			t.Fatal(out)
		}
		if out, _ := consoleRun(t, addr, printed, "apply", "-f", "-"); out != "service/db unchanged\nservice/web created\n" {
			t.Errorf("%s: recreating from get's output: %q", format, out)
		}
		again, _ := consoleRun(t, addr, "", "get", "services", "-n", "shop", "-o", format)
		if !strings.Contains(again, "clusterIp: 10.96.0.40") && !strings.Contains(again, `"clusterIp": "10.96.0.40"`) {
			t.Errorf("%s: the recreated service lost its cluster IP:\n%s", format, again)
		}
	}
}

// lockedBuffer is an output that a test reads while a command writes it;
// each write nudges wrote.
type lockedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the output contains s, on writes, within a bound.
func (b *lockedBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	bound := time.After(30 * time.Second) // a bound on a starved machine, not a wait
	for !strings.Contains(b.String(), s) {
		select {
		case <-b.wrote:
		case <-bound:
			t.Fatalf("no %q in:\n%s", s, b.String())
		}
	}
}

// TestWatchTable: watch prints the table, and again on every change.
func TestWatchTable(t *testing.T) {
	addr, _ := startConsoleRegistry(t)
	if out, code := consoleRun(t, addr, "", "apply", "-f", corpus+"/list.yaml"); code != 0 {
		t.Fatal(out)
	}
	out := &lockedBuffer{wrote: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- runConsole(ctx, "watch", []string{"services", "-n", "shop", "--addr", addr}, out, out) }()
	out.waitFor(t, "web    ClusterIP   10.96.0.40   80/TCP,9090/TCP   0/0")
	inst := "apiVersion: svcreg.io/v1\nkind: Instance\nname: web-1\nnamespace: shop\nip: 10.0.1.1\nlabels: {app: web}\n"
	if got, code := consoleRun(t, addr, inst, "apply", "-f", "-"); code != 0 {
		t.Fatal(got)
	}
	out.waitFor(t, "80/TCP,9090/TCP   1/1")
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("watch exited %d:\n%s", code, out.String())
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Error("watch redrew in place on an output that is not a terminal")
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		if err := completionCmd([]string{shell}, &out); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"describe", "services", "wide yaml json name", "-o name"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s completion lacks %q", shell, want)
			}
		}
	}
	if err := completionCmd([]string{"tcsh"}, io.Discard); err == nil {
		t.Error("an unknown shell was accepted")
	}
}

// TestApplyProgress: a long apply says how far it got, on stderr.
func TestApplyProgress(t *testing.T) {
	addr, _ := startConsoleRegistry(t)
	var docs strings.Builder
	for i := range 250 {
		fmt.Fprintf(&docs, "---\napiVersion: svcreg.io/v1\nkind: Service\nname: s%d\nnamespace: many\nports: [{port: 80}]\n", i)
	}
	stdin = strings.NewReader(docs.String())
	defer func() { stdin = os.Stdin }()
	var out, errOut bytes.Buffer
	if code := runConsole(context.Background(), "apply", []string{"-f", "-", "--addr", addr}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := strings.Count(out.String(), " created\n"); got != 250 {
		t.Errorf("%d objects created, want 250", got)
	}
	if want := "applied 100 of 250 objects\napplied 200 of 250 objects\n"; errOut.String() != want {
		t.Errorf("progress %q, want %q", errOut.String(), want)
	}
}
