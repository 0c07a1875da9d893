// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// libraryLogger is an hclog.Logger for hashicorp/raft and raft-autopilot
// whose lines arrive in slog at the level the library gave them (an
// upstream ERROR is an ERROR), with their key/value pairs as attributes
// and no second timestamp: hclog writes each line as JSON without a time,
// and libraryLog turns it back into one slog record.
func libraryLogger(log *slog.Logger, name string, level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, JSONFormat: true, DisableTime: true,
		Output: libraryLog{log}})
}

type libraryLog struct{ log *slog.Logger }

// hclog's JSON keys for the line's own fields.
const (
	hclogLevel   = "@level"
	hclogMessage = "@message"
	hclogModule  = "@module"
)

func (w libraryLog) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		w.line(line)
	}
	return len(p), nil
}

func (w libraryLog) line(line []byte) {
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		// Not hclog's JSON (a library's standard logger): keep it whole.
		w.log.Warn(strings.TrimSpace(string(line)))
		return
	}
	msg, _ := fields[hclogMessage].(string)
	lvl, _ := fields[hclogLevel].(string)
	attrs := make([]any, 0, 2*len(fields))
	if mod, ok := fields[hclogModule].(string); ok {
		attrs = append(attrs, "module", mod)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		attrs = append(attrs, k, fmt.Sprint(fields[k]))
	}
	level := slogLevel(lvl)
	if routine[msg] && level > slog.LevelInfo {
		level = slog.LevelInfo
	}
	w.log.Log(context.Background(), level, msg, attrs...)
}

// routine are the library's WARN lines that every healthy start or
// election prints (a single server elects itself after its first
// heartbeat timeout): they are INFO here, so a WARN means something.
var routine = map[string]bool{
	"heartbeat timeout reached, starting election": true,
}

// slogLevel maps hclog's level names; trace is below slog's debug.
func slogLevel(name string) slog.Level {
	switch name {
	case "trace":
		return slog.LevelDebug - 4
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelWarn
}
