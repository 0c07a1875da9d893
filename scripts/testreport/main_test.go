// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"
	"time"
)

func TestReport(t *testing.T) {
	const passing = `{"Action":"run","Package":"x/a","Test":"TestOK"}
{"Action":"output","Package":"x/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"x/a","Test":"TestOK","Elapsed":2.5}
{"Action":"run","Package":"x/a","Test":"TestRoot"}
{"Action":"output","Package":"x/a","Test":"TestRoot","Output":"    a_test.go:12: needs root (CI runs as root)\n"}
{"Action":"skip","Package":"x/a","Test":"TestRoot"}
{"Action":"run","Package":"x/b","Test":"TestRoot2"}
{"Action":"output","Package":"x/b","Test":"TestRoot2","Output":"    b_test.go:40: needs root (CI runs as root)\n"}
{"Action":"skip","Package":"x/b","Test":"TestRoot2"}
{"Action":"output","Package":"x/a","Output":"ok  \tx/a\t0.1s\n"}
`
	const failing = `{"Action":"run","Package":"x/c","Test":"TestBad"}
{"Action":"output","Package":"x/c","Test":"TestBad","Output":"    c_test.go:9: got 1, want 2\n"}
{"Action":"fail","Package":"x/c","Test":"TestBad"}
{"Action":"output","Package":"x/c","Output":"FAIL\tx/c\t0.2s\n"}
{"Action":"fail","Package":"x/c"}
`
	tests := []struct {
		name   string
		in     string
		failed bool
		want   []string
	}{
		{"skips are named, grouped by why", passing, false,
			[]string{"ok  \tx/a\t0.1s", "the slowest tests:\n     2.5s  a.TestOK", "2 tests skipped, so this run is not complete", "needs root (CI runs as root)\n    a.TestRoot, b.TestRoot2"}},
		{"a failure shows its output and fails", failing, true, []string{"c_test.go:9: got 1, want 2", "FAIL\tx/c", "no test skipped"}},
		{"a build error", `{"ImportPath":"x/d","Action":"build-output","Output":"d.go:3:1: syntax error\n"}` + "\n" + `{"ImportPath":"x/d","Action":"build-fail"}` + "\n",
			true, []string{"d.go:3:1: syntax error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			failed, err := report(strings.NewReader(tt.in), &out, time.Now())
			if err != nil || failed != tt.failed {
				t.Fatalf("failed=%v err=%v, want failed=%v\n%s", failed, err, tt.failed, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the report lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// FuzzReport: any input is reported or refused, never a panic.
func FuzzReport(f *testing.F) {
	f.Add(`{"Action":"skip","Package":"p","Test":"T"}`)
	f.Add("plain text\n")
	f.Fuzz(func(t *testing.T, in string) {
		report(strings.NewReader(in), &strings.Builder{}, time.Now())
	})
}
