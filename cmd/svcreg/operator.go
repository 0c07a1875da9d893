// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
)

// operatorCmd is `svcreg operator raft list-peers|remove-peer ID|transfer-leader [ID]`.
func operatorCmd(ctx context.Context, args []string) error {
	if len(args) < 2 || args[0] != "raft" {
		return errors.New("usage: svcreg operator raft list-peers|remove-peer ID|transfer-leader [ID] [--addr ADDR] [--json]")
	}
	fs := flag.NewFlagSet("operator raft "+args[1], flag.ContinueOnError)
	conn := addConnFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args[2:])
	if err != nil {
		return err
	}
	c, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	op := svcregv1grpc.NewOperatorServiceClient(c.Conn())
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch args[1] {
	case "list-peers":
		resp, err := op.ListPeers(ctx, &svcregv1.ListPeersRequest{})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(os.Stdout).Encode(resp.GetPeers())
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tRAFT ADDRESS\tGRPC ADDRESS\tSTATE\tVOTER\tAPPLIED\tCAUGHT UP")
		for _, p := range resp.GetPeers() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\t%v\n", p.GetId(), p.GetRaftAddress(), p.GetGrpcAddress(), p.GetState(),
				p.GetVoter(), p.GetAppliedIndex(), p.GetCaughtUp())
		}
		return tw.Flush()
	case "remove-peer":
		if len(pos) != 1 {
			return errors.New("usage: svcreg operator raft remove-peer ID")
		}
		_, err := op.RemovePeer(ctx, &svcregv1.RemovePeerRequest{Id: pos[0]})
		return err
	case "transfer-leader":
		id := ""
		if len(pos) > 0 {
			id = pos[0]
		}
		resp, err := op.TransferLeader(ctx, &svcregv1.TransferLeaderRequest{Id: id})
		if err != nil {
			return err
		}
		fmt.Printf("leader: %s\n", resp.GetLeader())
		return nil
	}
	return fmt.Errorf("unknown operator command %q", args[1])
}

// snapshotCmd is `svcreg snapshot save|restore FILE`.
func snapshotCmd(ctx context.Context, args []string) error {
	const usage = "usage: svcreg snapshot save|restore FILE [--addr ADDR]"
	if len(args) < 1 || args[0] != "save" && args[0] != "restore" {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("snapshot "+args[0], flag.ContinueOnError)
	conn := addConnFlags(fs)
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New(usage)
	}
	file := pos[0]
	c, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	op := svcregv1grpc.NewOperatorServiceClient(c.Conn())
	if args[0] == "save" {
		return saveSnapshot(ctx, op, file)
	}
	return restoreSnapshot(ctx, op, file)
}

// saveSnapshot writes the registry's snapshot to file: written aside and
// renamed, so a failed save never leaves a truncated snapshot under the
// name.
func saveSnapshot(ctx context.Context, op svcregv1grpc.OperatorServiceClient, file string) error {
	f, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	st, err := op.SaveSnapshot(ctx, &svcregv1.SaveSnapshotRequest{})
	if err != nil {
		return err
	}
	var n int
	for {
		chunk, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if _, err := f.Write(chunk.GetData()); err != nil {
			return err
		}
		n += len(chunk.GetData())
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), file); err != nil {
		return err
	}
	fmt.Printf("saved %d bytes to %s\n", n, file)
	return nil
}

// restoreSnapshot uploads file, 1 MiB at a time, as it reads it.
func restoreSnapshot(ctx context.Context, op svcregv1grpc.OperatorServiceClient, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := op.RestoreSnapshot(ctx)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if err := st.Send(&svcregv1.RestoreSnapshotRequest{Data: buf[:n]}); err != nil {
				break // the server answered: CloseAndRecv says why
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	resp, err := st.CloseAndRecv()
	if err != nil {
		return err
	}
	fmt.Printf("restored; the registry is at revision %d\n", resp.GetRevision())
	return nil
}
