// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// commands are the verbs run knows, for "did you mean".
var commands = []string{"serve", "get", "describe", "apply", "delete", "watch", "drain", "undrain", "completion", "bench",
	"resolve", "env", "operator", "snapshot", "proxy", "token", "kubeconfig", "cert", "xds", "version", "help"}

// globalValueFlags are the flags every registry command takes that have a
// value, so that a verb after them is found (`svcreg -n shop get svc`).
var globalValueFlags = map[string]bool{"n": true, "namespace": true, "addr": true, "token": true, "token-file": true,
	"cacert": true, "l": true, "selector": true, "o": true, "output": true}

// verbFirst moves the flags of a command line that come before its verb
// to the end, as kubectl takes global flags before the verb (`svcreg -n
// shop get svc` is `svcreg get svc -n shop`): every command parses flags
// after its arguments, and a verb with a subcommand (`token whoami`)
// keeps it next to it. A line that starts with its verb is returned as it
// is.
func verbFirst(args []string) []string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if i == 0 {
				return args
			}
			return append(slices.Clone(args[i:]), args[:i]...)
		}
		if a == "--" {
			return args
		}
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && globalValueFlags[name] {
			i++ // its value
		}
	}
	return args
}

// didYouMean is " (did you mean X?)" for the nearest of known to word
// within two edits, or "".
func didYouMean(word string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(word, k); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	if best == "" || best == word {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// quietFlags makes a long-flagged command (serve, proxy) answer a bad
// flag in two lines, the error with the nearest flag and where the list
// is, instead of printing every flag; -h prints them all to out.
func quietFlags(fs *flag.FlagSet, command string, out io.Writer) *flagErrors {
	fe := &flagErrors{fs: fs, command: command, out: out}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fe
}

type flagErrors struct {
	fs      *flag.FlagSet
	command string
	out     io.Writer
}

// explain turns a parse error into what to do.
func (fe *flagErrors) explain(err error) error {
	if err == nil {
		return nil
	}
	if err == flag.ErrHelp {
		fmt.Fprintf(fe.out, "Usage: svcreg %s [flags]\n\nEvery flag may also come from the environment (SVCREG_ and its name in upper case:\n--log-level is SVCREG_LOG_LEVEL) or from --config FILE; the command line wins, then\nthe environment, then the file.\n\nFlags:\n", fe.command)
		fe.fs.SetOutput(fe.out)
		fe.fs.PrintDefaults()
		fe.fs.SetOutput(io.Discard)
		return err
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = fmt.Sprintf("unknown flag --%s%s", name, strings.ReplaceAll(didYouMean(name, flagNames(fe.fs)), "mean ", "mean --"))
	}
	return fmt.Errorf("%s\n`svcreg %s --help` lists the flags", msg, fe.command)
}

// flagNames are fs's flags' names, in order.
func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}
