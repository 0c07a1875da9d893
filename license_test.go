// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package svcreg

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// licenseHeader opens every Go and proto file we write (docs/development.md,
// "Licence"); generated code under gen/ carries its generator's header.
const licenseHeader = "// Copyright 2026 The svcreg Authors\n// SPDX-License-Identifier: Apache-2.0\n"

func TestLicenseHeaders(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "*.go", "*.proto").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): the header check reads git's file list", err)
	}
	for _, path := range strings.Fields(string(out)) {
		if strings.HasPrefix(path, "gen/") {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the work tree
			}
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), licenseHeader) {
			t.Errorf("%s does not start with the licence header:\n%s", path, licenseHeader)
		}
	}
}
