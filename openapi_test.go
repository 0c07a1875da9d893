// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package svcreg

import (
	"encoding/json"
	"regexp"
	"testing"
)

// TestOpenAPIDocument: the served document has a real title and version,
// one path per URL template, and its error responses documented (CI also
// lints it with Redocly's recommended rules).
func TestOpenAPIDocument(t *testing.T) {
	var doc struct {
		Info  struct{ Title, Version string }
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info.Title != "svcreg" || doc.Info.Version != "v1" {
		t.Errorf("info %+v, want svcreg v1", doc.Info)
	}
	param := regexp.MustCompile(`\{[^}]*\}`)
	seen := map[string]string{}
	for path, ops := range doc.Paths {
		shape := param.ReplaceAllString(path, "{}")
		if other, dup := seen[shape]; dup {
			t.Errorf("%s and %s are the same path", path, other)
		}
		seen[shape] = path
		for method, op := range ops {
			for _, code := range []string{"200", "400", "401", "403", "404", "409", "422", "503"} {
				if op.Responses[code] == nil {
					t.Errorf("%s %s documents no %s response", method, path, code)
				}
			}
		}
	}
}
