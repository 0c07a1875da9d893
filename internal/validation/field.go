// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package validation holds Kubernetes' validation rules for names, labels,
// ports and addresses (k8s.io/apimachinery/pkg/util/validation), and the
// field error model (k8s.io/apimachinery/pkg/util/validation/field) that
// makes every error name the field it is about.
package validation

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path is a field path in proto field names, such as "service.ports[1].port"
// (AIP-193 field violations use this form).
type Path string

// Child returns the path of a field of p.
func (p Path) Child(name string) Path {
	if p == "" {
		return Path(name)
	}
	return Path(string(p) + "." + name)
}

// Index returns the path of element i of the list p.
func (p Path) Index(i int) Path { return Path(string(p) + "[" + strconv.Itoa(i) + "]") }

// Key returns the path of entry k of the map p.
func (p Path) Key(k string) Path { return Path(string(p) + "[" + strconv.Quote(k) + "]") }

// ErrorType is the kind of a field error, with Kubernetes' wording.
type ErrorType string

// The error types, as k8s field.ErrorType.
const (
	ErrorTypeRequired     ErrorType = "Required value"
	ErrorTypeInvalid      ErrorType = "Invalid value"
	ErrorTypeDuplicate    ErrorType = "Duplicate value"
	ErrorTypeNotSupported ErrorType = "Unsupported value"
	ErrorTypeForbidden    ErrorType = "Forbidden"
	ErrorTypeTooLong      ErrorType = "Too long"
	ErrorTypeTooMany      ErrorType = "Too many"
)

// Error is one invalid field.
type Error struct {
	Field  Path
	Type   ErrorType
	Value  any // the offending value, when there is one
	Detail string
}

// Error formats as Kubernetes does: `field: Type: value: detail`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Field))
	b.WriteString(": ")
	b.WriteString(string(e.Type))
	if e.Type == ErrorTypeInvalid || e.Type == ErrorTypeDuplicate || e.Type == ErrorTypeNotSupported || e.Type == ErrorTypeTooMany {
		b.WriteString(": ")
		b.WriteString(formatValue(e.Value))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// MaxEchoBytes bounds how much of an offending value an error repeats: a
// 1 MB label value must not make a 1 MB error.
const MaxEchoBytes = 128

func formatValue(v any) string {
	var s string
	switch v := v.(type) {
	case string:
		if len(v) > MaxEchoBytes {
			return strconv.Quote(truncate(v, MaxEchoBytes)) + fmt.Sprintf("... (%d bytes)", len(v))
		}
		return strconv.Quote(v)
	case nil:
		return "null"
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > MaxEchoBytes {
		return truncate(s, MaxEchoBytes) + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Required reports a missing field.
func Required(field Path, detail string) *Error {
	return &Error{Field: field, Type: ErrorTypeRequired, Detail: detail}
}

// Invalid reports a field with a bad value.
func Invalid(field Path, value any, detail string) *Error {
	return &Error{Field: field, Type: ErrorTypeInvalid, Value: value, Detail: detail}
}

// Duplicate reports a value that must be unique and is not.
func Duplicate(field Path, value any) *Error {
	return &Error{Field: field, Type: ErrorTypeDuplicate, Value: value}
}

// NotSupported reports a value outside an enumeration.
func NotSupported(field Path, value any, valid []string) *Error {
	quoted := make([]string, len(valid))
	for i, v := range valid {
		quoted[i] = strconv.Quote(v)
	}
	return &Error{Field: field, Type: ErrorTypeNotSupported, Value: value,
		Detail: "supported values: " + strings.Join(quoted, ", ")}
}

// Forbidden reports a field that may not be set (or changed) here.
func Forbidden(field Path, detail string) *Error {
	return &Error{Field: field, Type: ErrorTypeForbidden, Detail: detail}
}

// TooMany reports a list or map with more items than its limit.
func TooMany(field Path, actual, max int) *Error {
	return &Error{Field: field, Type: ErrorTypeTooMany, Value: actual, Detail: fmt.Sprintf("must have at most %d items", max)}
}

// TooLong reports a value over its length limit.
func TooLong(field Path, max int) *Error {
	return &Error{Field: field, Type: ErrorTypeTooLong, Detail: fmt.Sprintf("may not be more than %d bytes", max)}
}

// ErrorList is every invalid field of one object. A non-empty list is the
// error a validated write fails with.
type ErrorList []*Error

// MaxErrors bounds how many field errors a message and a BadRequest list:
// the rest are counted, not repeated.
const MaxErrors = 20

// Error joins the messages in the form `a: ...; b: ...`, the first
// MaxErrors of them.
func (l ErrorList) Error() string {
	msgs := make([]string, 0, min(len(l), MaxErrors+1))
	for i, e := range l {
		if i == MaxErrors {
			msgs = append(msgs, fmt.Sprintf("and %d more errors", len(l)-MaxErrors))
			break
		}
		msgs = append(msgs, e.Error())
	}
	return strings.Join(msgs, "; ")
}

// Err returns l as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Invalids turns the messages of a name check into field errors.
func Invalids(field Path, value any, msgs []string) ErrorList {
	var l ErrorList
	for _, m := range msgs {
		l = append(l, Invalid(field, value, m))
	}
	return l
}
