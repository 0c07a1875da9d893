// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Command openapi finishes the OpenAPI document protoc-gen-openapiv2
// writes (./scripts/generate runs it): the API's title, version and
// description; one path per URL template (the generator names a path
// parameter after the request field, so the create and update routes of a
// service read /v1/namespaces/{service.namespace}/services while its list
// reads /v1/namespaces/{namespace}/services: the same path twice); the bearer
// token scheme; and the error responses every operation can answer, with
// the status the REST gateway maps each gRPC code to (server/errors.go).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// fieldParam is a path parameter named after a nested request field.
var fieldParam = regexp.MustCompile(`\{[a-z_]+\.([a-z_]+)\}`)

// errorResponses are what every operation may answer besides 200; the
// body is always a google.rpc.Status with details (ErrorInfo, BadRequest).
var errorResponses = map[string]string{
	"400": "Malformed JSON, an unknown field, or a query parameter no method reads (INVALID_ARGUMENT without field violations).",
	"401": "No token, or one the server does not know, when the server requires tokens (UNAUTHENTICATED).",
	"403": "The token's roles do not allow this in this namespace (PERMISSION_DENIED).",
	"404": "The object does not exist (NOT_FOUND).",
	"409": "The object exists already, or its etag or resource version is not the one given (ALREADY_EXISTS, ABORTED).",
	"413": "The body is larger than 1.5 MiB.",
	"422": "A field breaks a rule: each is named in the BadRequest field violations (INVALID_ARGUMENT).",
	"429": "A limit on open watches or requests was reached; retry later (RESOURCE_EXHAUSTED).",
	"503": "The server cannot answer now: no Raft leader, or not caught up since it started (UNAVAILABLE); retry.",
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: openapi FILE (rewritten in place)")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
}

func rewrite(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if err := finish(doc); err != nil {
		return err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

func finish(doc map[string]any) error {
	doc["info"] = map[string]any{
		"title":   "svcreg",
		"version": "v1",
		"description": "The REST API of svcreg, a service registry and client-side load balancer for gRPC (the svcreg.v1 " +
			"gRPC services, through grpc-gateway). Objects follow Kubernetes' Service model; errors are google.rpc.Status.",
	}
	doc["securityDefinitions"] = map[string]any{"bearer": map[string]any{"type": "apiKey", "in": "header", "name": "Authorization",
		"description": "`Bearer ACCESSOR.SECRET`, a token from `svcreg token create`. A server without tokens (the loopback default) needs none."}}
	doc["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{}}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		return fmt.Errorf("no paths")
	}
	merged := map[string]any{}
	for _, p := range sortedKeys(paths) {
		template := fieldParam.ReplaceAllString(p, "{$1}")
		ops, _ := paths[p].(map[string]any)
		into, _ := merged[template].(map[string]any)
		if into == nil {
			into = map[string]any{}
			merged[template] = into
		}
		for method, op := range ops {
			if _, dup := into[method]; dup {
				return fmt.Errorf("%s %s: two operations", strings.ToUpper(method), template)
			}
			renameParams(op)
			addErrors(op)
			into[method] = op
		}
	}
	doc["paths"] = merged
	return nil
}

// renameParams names path parameters as the merged template does.
func renameParams(op any) {
	params, _ := op.(map[string]any)["parameters"].([]any)
	for _, p := range params {
		param, _ := p.(map[string]any)
		if name, _ := param["name"].(string); param["in"] == "path" && strings.Contains(name, ".") {
			param["name"] = name[strings.LastIndexByte(name, '.')+1:]
		}
	}
}

func addErrors(op any) {
	responses, _ := op.(map[string]any)["responses"].(map[string]any)
	if responses == nil {
		return
	}
	for code, description := range errorResponses {
		responses[code] = map[string]any{"description": description, "schema": map[string]any{"$ref": "#/definitions/rpcStatus"}}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
