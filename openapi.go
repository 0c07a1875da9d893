// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package svcreg holds the assets of the svcreg module that the binary
// embeds. The code lives in server/, internal/, resolver/, balancer/ and
// client/; see README.md.
package svcreg

import _ "embed"

// OpenAPI is the REST API's OpenAPI (Swagger 2.0) document, generated from
// proto/ by protoc-gen-openapiv2 and served at /openapi.json.
//
//go:embed gen/openapiv2/svcreg.swagger.json
var OpenAPI []byte
