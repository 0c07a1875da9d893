// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionString is what `svcreg version` prints: the module version, the
// commit it was built from (and whether the tree had changes), and the Go
// toolchain, from the build information the Go linker records.
func versionString(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return fmt.Sprintf("svcreg (no build information) %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	commit, when, dirty := "unknown", "", ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			when = " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	return fmt.Sprintf("svcreg %s commit %s%s%s %s %s/%s", version, commit, dirty, when, info.GoVersion, runtime.GOOS, runtime.GOARCH)
}

func versionCmd() error {
	info, ok := debug.ReadBuildInfo()
	fmt.Println(versionString(info, ok))
	return nil
}
