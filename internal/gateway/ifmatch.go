// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/apierror"
	"github.com/svcreg/svcreg/reason"
)

// honourIfMatch turns an If-Match header (RFC 9110 section 13.1.1) on a
// write into the request's etag precondition, which the store checks
// against the object in the same transaction as the write: a PUT or
// PATCH carries it in the body's etag, a DELETE in the etag query
// parameter. A mismatch is 412 Precondition Failed (writeHTTPError).
// "*" matches any current object, as the RFC says; a weak tag never
// matches (If-Match compares strongly), and several tags are refused
// (one object has one etag).
func honourIfMatch(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		header := strings.TrimSpace(r.Header.Get("If-Match"))
		if header == "" || header == "*" || !isWrite(r.Method) || r.Method == http.MethodPost {
			next(w, r, params)
			return
		}
		tag, err := entityTag(header)
		if err == nil && r.Method == http.MethodDelete {
			q := r.URL.Query()
			if q.Get("etag") != "" && q.Get("etag") != tag {
				err = apierror.WithDetails(codes.InvalidArgument, "If-Match and the etag query parameter differ", reason.FieldInvalid, nil)
			}
			q.Set("etag", tag)
			r.URL.RawQuery = q.Encode()
		} else if err == nil {
			err = setBodyEtag(r, tag)
		}
		if err != nil {
			writeHTTPError(r.Context(), nil, nil, w, r, err)
			return
		}
		next(w, r, params)
	}
}

// entityTag is the one strong tag of an If-Match header.
func entityTag(header string) (string, error) {
	if strings.Contains(header, ",") {
		return "", apierror.WithDetails(codes.InvalidArgument, "If-Match: name one entity tag (an object has one etag)", reason.FieldInvalid, nil)
	}
	if strings.HasPrefix(header, "W/") {
		return "", apierror.WithDetails(codes.FailedPrecondition, "If-Match: a weak entity tag never matches (RFC 9110 section 13.1.1)", reason.EtagMismatch, nil)
	}
	return strings.Trim(header, `"`), nil
}

// setBodyEtag puts tag in a JSON object body's etag, unless it names
// another one.
func setBodyEtag(r *http.Request, tag string) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		r.Body = io.NopCloser(bytes.NewReader(body)) // not an object: protojson says what is wrong
		return nil
	}
	if have, ok := obj["etag"].(string); ok && have != "" && have != tag {
		return apierror.WithDetails(codes.InvalidArgument, "If-Match and the body's etag differ", reason.FieldInvalid, nil)
	}
	obj["etag"] = tag
	if body, err = json.Marshal(obj); err != nil {
		return err
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return nil
}

// setETag sends an object's etag as the ETag header (RFC 9110 section
// 8.8.3), so a client can send it back as If-Match.
func setETag(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	type etagged interface{ GetEtag() string }
	var o etagged
	switch r := m.(type) {
	case interface{ GetService() *svcregv1.Service }:
		o = r.GetService()
	case interface{ GetInstance() *svcregv1.Instance }:
		o = r.GetInstance()
	case etagged:
		o = r
	}
	if o != nil && o.GetEtag() != "" {
		w.Header().Set("ETag", `"`+o.GetEtag()+`"`)
	}
	return nil
}
