// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// resolveCmd is `svcreg resolve NAME [TYPE]`: the registry's DNS answer,
// printed as dig prints records.
func resolveCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	conn := addConnFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return fmt.Errorf("usage: svcreg resolve [--addr ADDR] NAME [TYPE]")
	}
	req := &svcregv1.ResolveRequest{Name: pos[0]}
	if len(pos) == 2 {
		req.Type = pos[1]
	}
	c, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.Resolve(ctx, req)
	if err != nil {
		return err
	}
	fmt.Printf(";; status: %s\n", resp.GetRcode())
	for _, section := range []struct {
		name string
		rrs  []*svcregv1.DnsRecord
	}{{"ANSWER", resp.GetAnswer()}, {"AUTHORITY", resp.GetAuthority()}, {"ADDITIONAL", resp.GetAdditional()}} {
		if len(section.rrs) == 0 {
			continue
		}
		fmt.Printf(";; %s SECTION:\n", section.name)
		for _, rr := range section.rrs {
			fmt.Printf("%s\t%d\tIN\t%s\t%s\n", rr.GetName(), rr.GetTtl(), rr.GetType(), rr.GetData())
		}
	}
	return nil
}

// envCmd is `svcreg env [-n NAMESPACE]`: KEY=value lines for export/env.
func envCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	conn := addConnFlags(fs)
	ns := fs.String("n", "default", "namespace")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("usage: svcreg env [--addr ADDR] [-n NAMESPACE]")
	}
	c, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.GetEnvironment(ctx, &svcregv1.GetEnvironmentRequest{Namespace: *ns})
	if err != nil {
		return err
	}
	for _, v := range resp.GetVariables() {
		fmt.Fprintf(os.Stdout, "%s=%s\n", v.GetName(), v.GetValue())
	}
	return nil
}
