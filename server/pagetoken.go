// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/base64"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/svcreg/svcreg/internal/validation"
)

// Page sizes (AIP-158): 0 means the default; larger than the maximum is
// coerced down.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// A page token is opaque to clients: base64url("v1|<query hash>|<key>").
// The hash binds the token to the query that produced it, so a token reused
// with another namespace or selector is rejected instead of silently
// skipping objects (AIP-158).
const pageTokenVersion = "v1"

func queryHash(parts ...string) string {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

func encodePageToken(key string, query ...string) string {
	if key == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenVersion + "|" + queryHash(query...) + "|" + key))
}

// decodePageToken returns the key to resume after.
func decodePageToken(token string, query ...string) (string, error) {
	if token == "" {
		return "", nil
	}
	invalid := validation.ErrorList{validation.Invalid("page_token", token, "not a page token of this query (AIP-158): start again without one")}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", invalid
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[0] != pageTokenVersion || parts[1] != queryHash(query...) || parts[2] == "" {
		return "", invalid
	}
	return parts[2], nil
}

func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, validation.ErrorList{validation.Invalid("page_size", n, "must not be negative")}
	case n == 0:
		return defaultPageSize, nil
	case n > maxPageSize:
		return maxPageSize, nil
	}
	return int(n), nil
}
