// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/svcreg/svcreg/internal/console"
	"github.com/svcreg/svcreg/internal/manifest"
	"github.com/svcreg/svcreg/internal/meta"
)

// consoleCommands are the kubectl-like commands; they print errors as
// kubectl does, so run leaves them alone.
var consoleCommands = map[string]func(ctx context.Context, args []string, out, errOut io.Writer) error{
	"get": getCmd, "describe": describeCmd, "apply": applyCmd, "delete": deleteCmd,
	"watch": watchCmd, "drain": drainCmd(true), "undrain": drainCmd(false),
}

// errReported: the command printed its own errors on stderr.
var errReported = errors.New("reported")

// runConsole runs one console command with kubectl's habits: errors on
// stderr as "error: ..." or "Error from server (Reason): ...", exit 1.
func runConsole(ctx context.Context, name string, args []string, out, errOut io.Writer) int {
	err := consoleCommands[name](ctx, args, out, errOut)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errReported), errors.Is(err, console.ErrFailed):
	default:
		fmt.Fprintln(errOut, console.ErrorText(err))
	}
	return 1
}

// scopeFlags are kubectl's -n, -A and -l.
type scopeFlags struct {
	namespace, selector string
	all                 bool
}

func addScopeFlags(fs *flag.FlagSet, withAll bool) *scopeFlags {
	s := &scopeFlags{}
	for _, n := range []string{"n", "namespace"} {
		fs.StringVar(&s.namespace, n, os.Getenv("SVCREG_NAMESPACE"), "the namespace (default $SVCREG_NAMESPACE, else default)")
	}
	if withAll {
		for _, n := range []string{"A", "all-namespaces"} {
			fs.BoolVar(&s.all, n, false, "every namespace")
		}
		for _, n := range []string{"l", "selector"} {
			fs.StringVar(&s.selector, n, "", "a label selector, as app=web,tier!=cache")
		}
	}
	return s
}

func (s *scopeFlags) scope() console.Scope {
	return console.Scope{Namespace: s.namespace, AllNamespaces: s.all, Selector: s.selector}
}

// parseInterspersed parses flags wherever they are among the arguments,
// as kubectl does (`get services -n shop`), and returns the others.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if args = fs.Args(); len(args) == 0 {
			return positional, nil
		}
		positional, args = append(positional, args[0]), args[1:]
	}
}

// withConsole runs f with a console on the registry conn names.
func withConsole(ctx context.Context, conn connFlags, out, errOut io.Writer, f func(*console.Console) error) error {
	c, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(&console.Console{API: c.RegistryServiceClient, Out: out, Err: errOut, Now: consoleNow})
}

// consoleNow is the console's clock, for ages and lease countdowns (tests
// set the registry's).
var consoleNow = time.Now

func commandFlags(name, usage string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("svcreg "+name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "Usage: svcreg %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func getCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := commandFlags("get", "get services|instances|endpoints|namespaces [NAME...] [-n NS | -A] [-l SELECTOR] [--show-labels]\n"+
		"           [-o wide|yaml|json|name|jsonpath=TEMPLATE|custom-columns=HEADER:.path,...]", errOut)
	conn := addConnFlags(fs)
	scope := addScopeFlags(fs, true)
	var output string
	for _, n := range []string{"o", "output"} {
		fs.StringVar(&output, n, "", "output format: wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=HEADER:.path,... (default: a table)")
	}
	showLabels := fs.Bool("show-labels", false, "add the labels as the last column")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("you must specify the type of resource to get: services, instances, endpoints or namespaces")
	}
	if output, err = console.ParseOutput(output); err != nil {
		return err
	}
	if slices.Contains([]string{"namespaces", "namespace", "ns"}, pos[0]) {
		return withConsole(ctx, conn, out, errOut, func(c *console.Console) error { return c.Namespaces(ctx, output) })
	}
	kind, err := console.ParseKind(pos[0])
	if err != nil {
		return err
	}
	return withConsole(ctx, conn, out, errOut, func(c *console.Console) error {
		c.ShowLabels = *showLabels
		if len(pos) == 1 {
			return c.Get(ctx, kind, "", scope.scope(), output)
		}
		for _, name := range pos[1:] {
			if err := c.Get(ctx, kind, name, scope.scope(), output); err != nil {
				return err
			}
		}
		return nil
	})
}

func describeCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := commandFlags("describe", "describe service|instance NAME [-n NS]", errOut)
	conn := addConnFlags(fs)
	scope := addScopeFlags(fs, false)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("describe takes a kind and a name: svcreg describe service web")
	}
	kind, err := console.ParseKind(pos[0])
	if err != nil {
		return err
	}
	return withConsole(ctx, conn, out, errOut, func(c *console.Console) error {
		return c.Describe(ctx, kind, pos[1], scope.scope())
	})
}

// fileFlags is -f, repeatable: files, directories (their .yaml, .yml and
// .json files) or - for stdin.
type fileFlags []string

func (f *fileFlags) String() string     { return strings.Join(*f, ",") }
func (f *fileFlags) Set(v string) error { *f = append(*f, v); return nil }

// readManifests decodes every document the -f flags name.
func readManifests(files []string, stdin io.Reader) ([]manifest.Object, error) {
	var objs []manifest.Object
	for _, f := range files {
		paths := []string{f}
		if f != "-" {
			if st, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("the path %q does not exist", f)
			} else if st.IsDir() {
				entries, err := os.ReadDir(f)
				if err != nil {
					return nil, err
				}
				paths = nil
				for _, e := range entries {
					if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
						paths = append(paths, filepath.Join(f, e.Name()))
					}
				}
				sort.Strings(paths)
			}
		}
		for _, p := range paths {
			var data []byte
			var err error
			if p == "-" {
				data, err = io.ReadAll(io.LimitReader(stdin, manifest.MaxBytes+1))
				p = "<stdin>"
			} else {
				data, err = os.ReadFile(p)
			}
			if err != nil {
				return nil, err
			}
			got, err := manifest.Decode(p, data)
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
		}
	}
	if len(objs) == 0 {
		return nil, errors.New("no objects passed to apply")
	}
	return objs, nil
}

// stdin is where -f - reads (tests replace it).
var stdin io.Reader = os.Stdin

func applyCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := commandFlags("apply", "apply -f FILE|DIR|- [--dry-run]", errOut)
	conn := addConnFlags(fs)
	var files fileFlags
	for _, n := range []string{"f", "filename"} {
		fs.Var(&files, n, "a manifest file, a directory of them, or - for stdin (repeatable)")
	}
	dryRun := fs.Bool("dry-run", false, "check every object with the server's validation and say what would change; write nothing")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || len(files) == 0 {
		return errors.New("apply takes its objects from -f FILE, -f DIR or -f -")
	}
	objs, err := readManifests(files, stdin)
	if err != nil {
		return err
	}
	return withConsole(ctx, conn, out, errOut, func(c *console.Console) error {
		return c.Apply(ctx, objs, *dryRun)
	})
}

func deleteCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := commandFlags("delete", "delete (-f FILE|DIR|- | service|instance NAME...) [-n NS] [--ignore-not-found]", errOut)
	conn := addConnFlags(fs)
	scope := addScopeFlags(fs, false)
	var files fileFlags
	for _, n := range []string{"f", "filename"} {
		fs.Var(&files, n, "delete what a manifest declares (repeatable)")
	}
	ignore := fs.Bool("ignore-not-found", false, "a missing object is not an error")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	var objs []manifest.Object
	var kind meta.Kind
	switch {
	case len(files) > 0 && len(pos) > 0:
		return errors.New("delete takes -f or a kind and names, not both")
	case len(files) > 0:
		if objs, err = readManifests(files, stdin); err != nil {
			return err
		}
	case len(pos) < 2:
		return errors.New("delete takes -f FILE or a kind and names: svcreg delete service web")
	default:
		if kind, err = console.ParseKind(pos[0]); err != nil {
			return err
		}
	}
	return withConsole(ctx, conn, out, errOut, func(c *console.Console) error {
		if objs != nil {
			return c.DeleteObjects(ctx, objs, *ignore)
		}
		return c.Delete(ctx, kind, pos[1:], scope.scope(), *ignore)
	})
}

func watchCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := commandFlags("watch", "watch [services|instances|endpoints] [-n NS | -A] [-l SELECTOR]", errOut)
	conn := addConnFlags(fs)
	scope := addScopeFlags(fs, true)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	kind := console.Services
	if len(pos) > 1 {
		return errors.New("watch takes at most a kind")
	} else if len(pos) == 1 {
		if kind, err = console.ParseKind(pos[0]); err != nil {
			return err
		}
	}
	return withConsole(ctx, conn, out, errOut, func(c *console.Console) error {
		return c.Watch(ctx, kind, scope.scope(), isTerminal(out))
	})
}

// isTerminal: out is a character device (a terminal), where watch redraws
// in place.
func isTerminal(out io.Writer) bool {
	f, ok := out.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func drainCmd(drain bool) func(ctx context.Context, args []string, out, errOut io.Writer) error {
	name := map[bool]string{true: "drain", false: "undrain"}[drain]
	return func(ctx context.Context, args []string, out, errOut io.Writer) error {
		fs := commandFlags(name, name+" INSTANCE... [-n NS]", errOut)
		conn := addConnFlags(fs)
		scope := addScopeFlags(fs, false)
		pos, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		if len(pos) == 0 {
			return fmt.Errorf("%s takes the names of instances", name)
		}
		return withConsole(ctx, conn, out, errOut, func(c *console.Console) error { return c.Drain(ctx, pos, scope.scope(), drain) })
	}
}
