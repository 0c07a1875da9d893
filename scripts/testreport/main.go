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
	outputs := map[key][]string{} // each running test's output, until it ends
	skipped := map[string][]string{}
	var timed []timing // top-level tests, for where the time goes
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			fmt.Fprintln(out, sc.Text()) // a build error's plain text
			continue
		}
		k := key{ev.Package, ev.Test}
		switch ev.Action {
		case "build-output": // a compile error (go test -json since Go 1.24)
			fmt.Fprint(out, ev.Output)
		case "build-fail":
			failed = true
		case "output":
			if ev.Test == "" {
				if strings.HasPrefix(ev.Output, "ok ") || strings.HasPrefix(ev.Output, "FAIL") || strings.HasPrefix(ev.Output, "?") ||
					strings.HasPrefix(ev.Output, "panic") || strings.HasPrefix(ev.Output, "#") {
					fmt.Fprint(out, ev.Output)
				}
				continue
			}
			outputs[k] = append(outputs[k], ev.Output)
		case "fail":
			if ev.Test != "" {
				failed = true
				fmt.Fprint(out, strings.Join(outputs[k], ""))
			} else {
				failed = true
			}
			delete(outputs, k)
		case "skip":
			if ev.Test != "" {
				why := "skipped"
				for _, line := range outputs[k] {
					if m := skipMessage.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil {
						why = m[1]
					}
				}
				skipped[why] = append(skipped[why], ev.Package[strings.LastIndex(ev.Package, "/")+1:]+"."+ev.Test)
			}
			delete(outputs, k)
		case "pass":
			delete(outputs, k)
		}
		if (ev.Action == "pass" || ev.Action == "fail") && ev.Test != "" && !strings.Contains(ev.Test, "/") {
			timed = append(timed, timing{ev.Package[strings.LastIndex(ev.Package, "/")+1:] + "." + ev.Test, ev.Elapsed})
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	printSlowest(out, timed)
	fmt.Fprintf(out, "\nall packages in %s", time.Since(start).Round(time.Second))
	if len(skipped) == 0 {
		fmt.Fprintln(out, "; no test skipped")
		return failed, nil
	}
	n := 0
	for _, tests := range skipped {
		n += len(tests)
	}
	fmt.Fprintf(out, "; %d tests skipped, so this run is not complete:\n", n)
	for _, why := range slices.Sorted(func(yield func(string) bool) {
		for w := range skipped {
			if !yield(w) {
				return
			}
		}
	}) {
		tests := skipped[why]
		slices.Sort(tests)
		fmt.Fprintf(out, "  %s\n    %s\n", why, strings.Join(tests, ", "))
	}
	fmt.Fprintln(out, "(.ci/run installs what they need and runs as root; each reason says what enables it)")
	return failed, nil
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
