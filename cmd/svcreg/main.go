// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Command svcreg is the registry server and its command-line tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/svcreg/svcreg/internal/console"
)

const usage = `svcreg: a service registry and client-side load balancer for gRPC

Usage:
  svcreg serve [flags]     run the registry (svcreg serve -h for flags)
  svcreg get services|instances|endpoints [NAME] [-n NS | -A] [-l SELECTOR] [-o wide|yaml|json|name]
  svcreg describe service|instance NAME [-n NS]
  svcreg apply -f FILE|DIR|- [--dry-run]   create or update (svcreg and Kubernetes manifests)
  svcreg delete -f FILE | service|instance NAME...  [--ignore-not-found]
  svcreg watch [services|instances|endpoints] [-n NS | -A]   a live table
  svcreg drain|undrain INSTANCE...   mark instances terminating, or serving again
  svcreg completion bash|zsh|fish    shell completion
  svcreg bench [flags]     measure watch propagation under load (svcreg bench -h)
  svcreg resolve NAME [TYPE]  ask the registry's DNS view (A, AAAA, SRV, PTR, TXT)
  svcreg env [-n NAMESPACE]   print the services' environment variables (KEY=value)
  svcreg operator raft list-peers|remove-peer ID|transfer-leader [ID]
  svcreg snapshot save|restore FILE
  svcreg proxy [flags]     make cluster IPs and node ports real on this node (svcreg proxy -h)
  svcreg token create|list|revoke|whoami|generate   manage access tokens
  svcreg kubeconfig [--server URL]   a kubeconfig for kubectl and client-go (docs/kubernetes.md)
  svcreg cert ca|issue        make a CA and certificates for TLS
  svcreg xds bootstrap [--server ADDR]  the bootstrap JSON of proxyless gRPC clients (xds:///)
  svcreg xds clients          the xDS clients of a server: what each accepted, what it rejected and why
  svcreg version              the version, commit and Go toolchain (also --version)

Every command that talks to a registry takes --addr, --token (or
--token-file) and --cacert, or SVCREG_ADDR, SVCREG_TOKEN (SVCREG_TOKEN_FILE)
and SVCREG_CACERT.

`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once (the default action)
	}()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	args = verbFirst(args)
	if cmd, ok := consoleCommands[args[0]]; ok && cmd != nil {
		return runConsole(ctx, args[0], args[1:], os.Stdout, os.Stderr)
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:])
	case "bench":
		err = runBench(ctx, args[1:])
	case "resolve":
		err = resolveCmd(ctx, args[1:])
	case "env":
		err = envCmd(ctx, args[1:])
	case "operator":
		err = operatorCmd(ctx, args[1:])
	case "snapshot":
		err = snapshotCmd(ctx, args[1:])
	case "token":
		err = tokenCmd(ctx, args[1:])
	case "kubeconfig":
		err = kubeconfigCmd(ctx, args[1:], os.Stdout)
	case "proxy":
		err = proxyCmd(ctx, args[1:])
	case "cert":
		err = certCmd(args[1:])
	case "xds":
		err = xdsCmd(ctx, args[1:])
	case "completion":
		err = completionCmd(args[1:], os.Stdout)
	case "version", "--version":
		err = versionCmd()
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "svcreg: unknown command %q%s\n`svcreg help` lists the commands\n", args[0], didYouMean(args[0], commands))
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "svcreg %s: %v\n", args[0], err)
		if h := console.Hint(err); h != "" {
			fmt.Fprintln(os.Stderr, h)
		}
		return 1
	}
	return 0
}
