// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

// Watch prints the get table and reprints it on every change, from the
// registry's watch stream (no polling). On a terminal the table is
// redrawn in place; otherwise each version follows the last, after a
// blank line. It returns when ctx ends.
func (c *Console) Watch(ctx context.Context, kind meta.Kind, s Scope, terminal bool) error {
	stream, err := c.API.Watch(ctx, &svcregv1.WatchRequest{Namespace: s.namespace()})
	if err != nil {
		return err
	}
	events := make(chan error, 64)
	go func() {
		for {
			_, err := stream.Recv()
			select {
			case events <- err:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	shown := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-events:
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		drained := false
		for !drained { // one redraw for a burst
			select {
			case err := <-events:
				if err != nil && ctx.Err() == nil {
					return err
				}
			default:
				drained = true
			}
		}
		if shown, err = c.redraw(ctx, kind, s, terminal, shown); err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// redraw prints the table again; shown is the line count of the last one.
func (c *Console) redraw(ctx context.Context, kind meta.Kind, s Scope, terminal bool, shown int) (int, error) {
	snap, err := c.read(ctx, kind, "", s)
	if err != nil {
		return shown, err
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 3, ' ', 0)
	c.table(tw, snap, s.AllNamespaces, false)
	if err := tw.Flush(); err != nil {
		return shown, err
	}
	out := buf.String()
	switch {
	case terminal && shown > 0:
		fmt.Fprintf(c.Out, "\x1b[%dA\x1b[J", shown) // back to the table's first line, clear below
	case shown > 0:
		fmt.Fprintln(c.Out)
	}
	fmt.Fprint(c.Out, out)
	return strings.Count(out, "\n"), nil
}
