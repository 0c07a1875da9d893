// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Command testreport reads `go test -json` and prints what `go test`
// would (each package's ok or FAIL line, the output of what failed), then
// names every test that skipped, grouped by why, with what enables it:
// a run that skipped tests says so instead of looking complete. It exits
// 1 when anything failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (test2json's TestEvent).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// skipMessage is the text a t.Skip printed ("    file_test.go:12: why").
var skipMessage = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)

func main() {
	failed, err := report(os.Stdin, os.Stdout, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

type key struct{ pkg, test string }

func report(in io.Reader, out io.Writer, start time.Time) (failed bool, err error) {
	r := &reporter{out: out, outputs: map[key][]string{}, skipped: map[string][]string{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			fmt.Fprintln(out, sc.Text()) // a build error's plain text
			continue
		}
		r.handle(ev)
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	printSlowest(out, r.timed)
	fmt.Fprintf(out, "\nall packages in %s", time.Since(start).Round(time.Second))
	printSkipped(out, r.skipped)
	return r.failed, nil
}

// reporter is what the report keeps while the events arrive.
type reporter struct {
	out     io.Writer
	outputs map[key][]string    // each running test's output, until it ends
	skipped map[string][]string // tests by why they skipped
	timed   []timing            // top-level tests, for where the time goes
	failed  bool
}

func (r *reporter) handle(ev event) {
	k := key{ev.Package, ev.Test}
	short := ev.Package[strings.LastIndex(ev.Package, "/")+1:] + "." + ev.Test
	switch ev.Action {
	case "build-output": // a compile error (go test -json since Go 1.24)
		fmt.Fprint(r.out, ev.Output)
	case "build-fail":
		r.failed = true
	case "output":
		if ev.Test != "" {
			r.outputs[k] = append(r.outputs[k], ev.Output)
		} else if packageLine(ev.Output) {
			fmt.Fprint(r.out, ev.Output)
		}
	case "fail":
		r.failed = true
		fmt.Fprint(r.out, strings.Join(r.outputs[k], ""))
	case "skip":
		if ev.Test != "" {
			why := "skipped"
			for _, line := range r.outputs[k] {
				if m := skipMessage.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil {
					why = m[1]
				}
			}
			r.skipped[why] = append(r.skipped[why], short)
		}
	}
	switch ev.Action {
	case "pass", "fail", "skip":
		delete(r.outputs, k)
	}
	if (ev.Action == "pass" || ev.Action == "fail") && ev.Test != "" && !strings.Contains(ev.Test, "/") {
		r.timed = append(r.timed, timing{short, ev.Elapsed})
	}
}

// packageLine: a package's own line, as go test prints it.
func packageLine(s string) bool {
	for _, p := range []string{"ok ", "FAIL", "?", "panic", "#"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// printSkipped ends the report: nothing skipped, or every skipped test by
// why, which says what enables it.
func printSkipped(out io.Writer, skipped map[string][]string) {
	if len(skipped) == 0 {
		fmt.Fprintln(out, "; no test skipped")
		return
	}
	n := 0
	for _, tests := range skipped {
		n += len(tests)
	}
	fmt.Fprintf(out, "; %d tests skipped, so this run is not complete:\n", n)
	for _, why := range slices.Sorted(maps.Keys(skipped)) {
		tests := skipped[why]
		slices.Sort(tests)
		fmt.Fprintf(out, "  %s\n    %s\n", why, strings.Join(tests, ", "))
	}
	fmt.Fprintln(out, "(.ci/run installs what they need and runs as root; each reason says what enables it)")
}

type timing struct {
	test    string
	seconds float64
}

// printSlowest names the ten slowest tests: where the suite's time goes.
func printSlowest(out io.Writer, timed []timing) {
	if len(timed) == 0 {
		return
	}
	slices.SortFunc(timed, func(a, b timing) int {
		switch {
		case a.seconds > b.seconds:
			return -1
		case a.seconds < b.seconds:
			return 1
		}
		return strings.Compare(a.test, b.test)
	})
	fmt.Fprintln(out, "\nthe slowest tests:")
	for _, t := range timed[:min(10, len(timed))] {
		fmt.Fprintf(out, "  %6.1fs  %s\n", t.seconds, t.test)
	}
}
