// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestLibraryLogger: Raft's and autopilot's lines keep their level, their
// pairs become attributes, and only slog stamps the time.
func TestLibraryLogger(t *testing.T) {
	tests := []struct {
		name string
		log  func(hclog.Logger)
		want string // the slog text line, without its time
	}{
		{"error stays error", func(l hclog.Logger) {
			l.Error("failed to contact", "server-id", "n2", "error", errors.New("dial tcp: refused"))
		},
			`level=ERROR msg="failed to contact" module=raft error="dial tcp: refused" server-id=n2`},
		{"warn", func(l hclog.Logger) { l.Warn("heartbeat timeout reached", "last-leader-addr", "127.0.0.1:7401") },
			`level=WARN msg="heartbeat timeout reached" module=raft last-leader-addr=127.0.0.1:7401`},
		{"info", func(l hclog.Logger) { l.Info("entering follower state") },
			`level=INFO msg="entering follower state" module=raft`},
		{"debug", func(l hclog.Logger) { l.Debug("votes", "needed", 2) },
			`level=DEBUG msg=votes module=raft needed=2`},
		{"named sub-logger", func(l hclog.Logger) { l.Named("snapshot").Warn("reaping") },
			`level=WARN msg=reaping module=raft.snapshot`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			tt.log(libraryLogger(log, "raft", hclog.Debug))
			line := strings.TrimSpace(buf.String())
			if strings.Count(line, "time=") != 1 || strings.Count(line, "\n") != 0 {
				t.Fatalf("want one line with one time: %q", line)
			}
			if _, rest, _ := strings.Cut(line, " "); rest != tt.want {
				t.Errorf("got  %s\nwant %s", rest, tt.want)
			}
		})
	}
}

// TestLibraryLoggerLevelAndFallback: lines under the logger's level are
// dropped, and a line that is not hclog's JSON is kept whole as a warning.
func TestLibraryLoggerLevelAndFallback(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	l := libraryLogger(log, "raft", hclog.Warn)
	l.Info("not shown")
	if buf.Len() != 0 {
		t.Fatalf("an info line under a warn logger: %q", buf.String())
	}
	libraryLog{log}.Write([]byte("2026/12/01 plain line\n"))
	if !strings.Contains(buf.String(), `level=WARN msg="2026/12/01 plain line"`) {
		t.Errorf("a plain line: %q", buf.String())
	}
}

// TestRoutineRaftLinesAreInfo: the election line every start prints is
// INFO; other warnings stay WARN.
func TestRoutineRaftLinesAreInfo(t *testing.T) {
	var buf bytes.Buffer
	l := libraryLogger(slog.New(slog.NewTextHandler(&buf, nil)), "raft", hclog.Warn)
	l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "")
	l.Warn("failed to contact", "server-id", "n2")
	out := buf.String()
	if !strings.Contains(out, `level=INFO msg="heartbeat timeout reached, starting election"`) ||
		!strings.Contains(out, `level=WARN msg="failed to contact"`) {
		t.Errorf("levels:\n%s", out)
	}
}
