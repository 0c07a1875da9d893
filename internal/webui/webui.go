// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package webui is the web view (docs/console.md): hand-written HTML, CSS
// and JavaScript, embedded, with no build step and no network fetch. It
// reads the REST API of the server that serves it, with the token the
// person gives it, and follows the watch stream for live updates.
package webui

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"

	"github.com/svcreg/svcreg/internal/spelling"
)

//go:embed ui
var uiFiles embed.FS

// Handler serves the web view under /ui/.
func Handler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	// The enums' Kubernetes spellings, from their one table
	// (internal/spelling), as a script the page loads before its own.
	table, err := json.Marshal(spelling.Table())
	if err != nil {
		panic(err)
	}
	spellings := []byte("window.SPELLINGS = " + string(table) + ";\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Nothing but this origin: no CDN, no inline script from elsewhere.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		if r.URL.Path == "/ui/spellings.js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(spellings)
			return
		}
		files.ServeHTTP(w, r)
	})
}
