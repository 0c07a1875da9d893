// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/svcreg/svcreg/internal/proxy"
	"github.com/svcreg/svcreg/server"
)

func TestVerbFirst(t *testing.T) {
	tests := []struct{ in, want string }{
		{"get svc -n shop", "get svc -n shop"},
		{"-n shop get svc", "get svc -n shop"},
		{"--addr 127.0.0.1:1 -o yaml get svc web", "get svc web --addr 127.0.0.1:1 -o yaml"},
		{"--namespace=shop describe service web", "describe service web --namespace=shop"},
		{"-A get instances", "get instances -A"},
		{"--addr 127.0.0.1:1 token whoami", "token whoami --addr 127.0.0.1:1"},
		{"--version", "--version"},
		{"-h", "-h"},
	}
	for _, tt := range tests {
		if got := strings.Join(verbFirst(strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("verbFirst(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct{ word, want string }{
		{"gte", " (did you mean get?)"},
		{"serv", " (did you mean serve?)"},
		{"desribe", " (did you mean describe?)"},
		{"get", ""},
		{"kubernetes", ""},
	}
	for _, tt := range tests {
		if got := didYouMean(tt.word, commands); got != tt.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

// TestFlagErrors: a bad flag is two lines naming the nearest flag and
// where the list is; -h prints the list.
func TestFlagErrors(t *testing.T) {
	newFS := func(out *bytes.Buffer) (*flag.FlagSet, *flagErrors) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.String("grpc-addr", "", "gRPC listen address")
		fs.String("data-dir", "", "directory")
		return fs, quietFlags(fs, "serve", out)
	}
	var out bytes.Buffer
	fs, fe := newFS(&out)
	err := fe.explain(fs.Parse([]string{"--grpc-adr", "x"}))
	if want := "unknown flag --grpc-adr (did you mean --grpc-addr?)\n`svcreg serve --help` lists the flags"; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if out.Len() != 0 {
		t.Errorf("a bad flag printed the flags:\n%s", out.String())
	}
	fs, fe = newFS(&out)
	if err := fe.explain(fs.Parse([]string{"-h"})); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-grpc-addr") {
		t.Errorf("-h: %v\n%s", err, out.String())
	}
}

// TestConfigPrecedence: the command line wins over the environment, which
// wins over --config; lists join with commas; an unknown key is an error
// naming the nearest flag.
func TestConfigPrecedence(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	grpcAddr := fs.String("grpc-addr", "default", "")
	logLevel := fs.String("log-level", "default", "")
	dataDir := fs.String("data-dir", "default", "")
	join := fs.String("join", "", "")
	pprof := fs.Bool("pprof", false, "")
	config := configFlag(fs)
	path := filepath.Join(t.TempDir(), "svcreg.yaml")
	writeFile := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("grpc-addr: from-file\nlog-level: from-file\ndata-dir: /var/lib/svcreg\njoin: [a:7401, b:7401]\npprof: true\n")
	if err := fs.Parse([]string{"--grpc-addr", "from-flag", "--config", path}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SVCREG_LOG_LEVEL": "from-env", "SVCREG_GRPC_ADDR": "from-env"}
	if err := flagsFromEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := flagsFromConfig(fs, *config); err != nil {
		t.Fatal(err)
	}
	got := []string{*grpcAddr, *logLevel, *dataDir, *join}
	if want := []string{"from-flag", "from-env", "/var/lib/svcreg", "a:7401,b:7401"}; !slices.Equal(got, want) || !*pprof {
		t.Errorf("got %q pprof=%v, want %q pprof=true", got, *pprof, want)
	}

	tests := []struct{ file, want string }{
		{"grpc-adr: x\n", `"grpc-adr" is not a flag of this command (did you mean grpc-addr?)`},
		{"data-dir: {a: b}\n", "data-dir: want a value or a list, not a mapping"},
		{"pprof: maybe\n", "pprof: parse error"},
		{"[1, 2]\n", "cannot unmarshal"},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.String("grpc-addr", "", "")
		fs.String("data-dir", "", "")
		fs.Bool("pprof", false, "")
		writeFile(tt.file)
		if err := flagsFromConfig(fs, path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.file, err, tt.want)
		}
	}
}

// TestDeployConfigs: the example configuration files name only flags
// of their command, with values the flags take.
func TestDeployConfigs(t *testing.T) {
	var scfg server.Config
	serveFS, _ := serveFlagSet(&scfg)
	if err := flagsFromConfig(serveFS, "../../deploy/svcreg.yaml"); err != nil {
		t.Error(err)
	}
	if scfg.NodeID != "n1" || scfg.BootstrapExpect != 3 || scfg.Security.PeerTLSCA == "" || len(scfg.Security.HTTPAllowedHosts) != 2 {
		t.Errorf("deploy/svcreg.yaml read as %+v", scfg)
	}
	var pcfg proxy.Config
	proxyFS, _ := proxyFlagSet(&pcfg)
	if err := flagsFromConfig(proxyFS, "../../deploy/svcreg-proxy.yaml"); err != nil {
		t.Error(err)
	}
	if pcfg.NodeName != "node-a" || pcfg.Mode != "nftables" {
		t.Errorf("deploy/svcreg-proxy.yaml read as %+v", pcfg)
	}
}

// FuzzConfigFile: any --config file sets flags or fails with an error,
// never a panic.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{"grpc-addr: x\n", "join: [a, b]\n", "pprof: true\n", "data-dir: {a: b}\n", "- 1\n", "", "http-allowed-host: [a, b]\n"} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "c.yaml")
	f.Fuzz(func(t *testing.T, s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		var cfg server.Config
		fs, _ := serveFlagSet(&cfg)
		_ = flagsFromConfig(fs, path)
	})
}

// FuzzVerbFirst: the verb moves to the front and nothing is lost.
func FuzzVerbFirst(f *testing.F) {
	f.Add("-n shop get svc")
	f.Add("--addr x -o yaml describe service web")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		got := verbFirst(args)
		if len(got) != len(args) {
			t.Fatalf("verbFirst(%q) = %q", args, got)
		}
		a, b := slices.Clone(args), slices.Clone(got)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("verbFirst(%q) = %q", args, got)
		}
	})
}
