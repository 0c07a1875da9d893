// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseInterleaved parses flags given before, between or after the
// positional arguments (`svcreg snapshot save FILE --addr A`), which the
// flag package alone stops at, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// byteSize is a flag holding a size: a number of bytes, or one with a
// binary suffix ("64MiB", "256KiB", "1GiB").
type byteSize[T int | int64] struct{ p *T }

func (b byteSize[T]) String() string {
	if b.p == nil {
		return "0"
	}
	return formatBytes(int64(*b.p))
}

func (b byteSize[T]) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	if int64(T(n)) != n {
		return fmt.Errorf("%q is too large", s)
	}
	*b.p = T(n)
	return nil
}

var byteUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseBytes reads a size such as 64MiB (binary units; a bare number is
// bytes).
func parseBytes(s string) (int64, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size such as 64MiB, 512KiB or 1048576", s)
	}
	return n << shift, nil
}

func formatBytes(n int64) string {
	for _, u := range byteUnits {
		if u.shift > 0 && n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// logFlags adds --log-level and --log-format; the returned function builds
// the logger once the flags are parsed.
func logFlags(fs *flag.FlagSet) func() (*slog.Logger, error) {
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	format := fs.String("log-format", "text", "log line format: text (logfmt) or json")
	return func() (*slog.Logger, error) { return newLogger(os.Stderr, *level, *format) }
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// flagsFromEnv gives every flag of fs not set on the command line the
// value of its environment variable, when set: SVCREG_ and the flag's
// name in upper case with '-' as '_' (--grpc-addr: SVCREG_GRPC_ADDR), as
// a container's environment configures a server. The command line wins.
func flagsFromEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		if v, ok := lookup(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%.128q (for --%s): %v", name, v, f.Name, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "SVCREG_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseDaemonFlags parses a long-running command's flags (serve, proxy):
// the command line, a bad flag explained in two lines; then SVCREG_*
// variables for what it left unset; then the --config file, whose path
// config points at once parsed, for what both left. Such a command takes
// no arguments.
func parseDaemonFlags(fs *flag.FlagSet, command string, args []string, config *string) error {
	flagErrs := quietFlags(fs, command, os.Stdout)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagErrs.explain(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("it takes flags only, not %q\n`svcreg %s --help` lists the flags", pos[0], command)
	}
	if err := flagsFromEnv(fs, os.LookupEnv); err != nil {
		return err
	}
	return flagsFromConfig(fs, *config)
}

// configFlag adds --config: a YAML file of flag values.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "a YAML file of flag values keyed by flag name (grpc-addr: 127.0.0.1:7400); the command line and SVCREG_* variables win over it (docs/configuration.md)")
}

// flagsFromConfig gives every flag of fs that neither the command line nor
// the environment set its value from the YAML file at path: a mapping from
// flag names to values (a list is the flag's comma-separated form, as
// join takes). A key that is no flag is an error naming the nearest one.
func flagsFromConfig(fs *flag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("--config %s: %v", path, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	known := flagNames(fs)
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if fs.Lookup(name) == nil || name == "config" {
			return fmt.Errorf("--config %s: %q is not a flag of this command%s", path, name, didYouMean(name, known))
		}
		if set[name] {
			continue // the command line or the environment said otherwise
		}
		if err := setFromConfig(fs, name, values[name]); err != nil {
			return fmt.Errorf("--config %s: %s: %v", path, name, err)
		}
	}
	return nil
}

// setFromConfig sets a flag from a YAML value: a list sets a repeatable
// flag (its help says "repeatable") once per item, any other flag once
// with the items comma-separated.
func setFromConfig(fs *flag.FlagSet, name string, value any) error {
	if items, ok := value.([]any); ok && strings.Contains(fs.Lookup(name).Usage, "repeatable") {
		for _, item := range items {
			v, err := configValue(item)
			if err == nil {
				err = fs.Set(name, v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	v, err := configValue(value)
	if err != nil {
		return err
	}
	return fs.Set(name, v)
}

// configValue is a YAML value as a flag's text.
func configValue(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := configValue(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("want a value or a list, not a mapping")
	}
	return fmt.Sprint(v), nil
}
