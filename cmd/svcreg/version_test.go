// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionString(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"a release", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T20:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			true, "svcreg v1.2.3 commit abc123 2026-12-01T20:00:00Z go1.26.0 " + platform},
		{"a checkout with changes", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "def456"}, {Key: "vcs.modified", Value: "true"}}},
			true, "svcreg (devel) commit def456 (modified) go1.26.0 " + platform},
		{"no vcs stamp", &debug.BuildInfo{GoVersion: "go1.26.0"}, true, "svcreg (devel) commit unknown go1.26.0 " + platform},
		{"no build info", nil, false, "svcreg (no build information) " + runtime.Version() + " " + platform},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionString(tt.info, tt.ok); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestVersionCommand: `svcreg version` and `svcreg --version` print the
// commit the binary was built from.
func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		b, err := exec.Command(binary, arg).Output()
		out := string(b)
		if err != nil || !strings.HasPrefix(out, "svcreg ") || !strings.Contains(out, " commit ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("svcreg %s: %q, %v", arg, out, err)
		}
	}
}
