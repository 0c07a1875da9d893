// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1048576", 1 << 20, true}, {"64MiB", 64 << 20, true}, {"256KiB", 256 << 10, true},
		{"1GiB", 1 << 30, true}, {" 2 MiB ", 2 << 20, true}, {"7B", 7, true},
		{"", 0, false}, {"-1", 0, false}, {"1.5MiB", 0, false}, {"64MB", 0, false}, {"MiB", 0, false},
		{"9223372036854775807GiB", 0, false},
	} {
		got, err := parseBytes(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for _, n := range []int64{0, 7, 1024, 64 << 20, 3 << 30, 1<<20 + 1} {
		if got, err := parseBytes(formatBytes(n)); err != nil || got != n {
			t.Errorf("round trip of %d: %q -> %d, %v", n, formatBytes(n), got, err)
		}
	}
}

// FuzzParseBytes: never a panic, and what parses formats back to itself.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"64MiB", "0", "1GiB", "12KiB", "x", "-3", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseBytes(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("parseBytes(%q) = %d", s, n)
		}
		if back, err := parseBytes(formatBytes(n)); err != nil || back != n {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, n, formatBytes(n), back, err)
		}
	})
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		level, format string
		wantErr       string // names the flag
		wantLine      string // what a warning looks like
	}{
		{"info", "text", "", `level=WARN msg=disk`},
		{"warn", "json", "", `"level":"WARN","msg":"disk"`},
		{"debug", "yaml", "--log-format", ""},
		{"loud", "text", "--log-level", ""},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			var buf strings.Builder
			log, err := newLogger(&buf, tt.level, tt.format)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Warn("disk")
			if !strings.Contains(buf.String(), tt.wantLine) {
				t.Errorf("logged %q, want %q in it", buf.String(), tt.wantLine)
			}
		})
	}
}

func TestFlagsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // --grpc-addr after both
		wantTTL string
		wantErr string
	}{
		{"the environment fills an unset flag", nil, map[string]string{"SVCREG_GRPC_ADDR": "0.0.0.0:7400", "SVCREG_DNS_TTL": "9s"}, "0.0.0.0:7400", "9s", ""},
		{"the command line wins", []string{"--grpc-addr", "127.0.0.1:1"}, map[string]string{"SVCREG_GRPC_ADDR": "0.0.0.0:7400"}, "127.0.0.1:1", "5s", ""},
		{"nothing set: the defaults", nil, nil, "127.0.0.1:7400", "5s", ""},
		{"a bad value names the variable", nil, map[string]string{"SVCREG_DNS_TTL": "soon"}, "", "", "SVCREG_DNS_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			addr := fs.String("grpc-addr", "127.0.0.1:7400", "")
			ttl := fs.Duration("dns-ttl", 5*time.Second, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := flagsFromEnv(fs, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || *addr != tt.want || ttl.String() != tt.wantTTL {
				t.Errorf("grpc-addr %q dns-ttl %v err %v; want %q %s", *addr, *ttl, err, tt.want, tt.wantTTL)
			}
		})
	}
}
