// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
)

// fields walks one mapping of a Kubernetes document: each read names the
// key it takes, a wrong type is an error naming the field's path, and
// done lists every key nobody read as ignored.
type fields struct {
	m    map[string]any
	path string
	read []string
	r    *report
}

// report collects a document's ignored fields and its first error.
type report struct {
	ignored []string
	err     error
}

// newDocument walks a Kubernetes document; apiVersion and kind, which
// chose the mapping, count as read.
func newDocument(m map[string]any) (fields, *report) {
	r := &report{}
	f := fields{m: m, r: r, read: []string{"apiVersion", "kind"}}
	return f, r
}

func (f *fields) at(key string) string {
	if f.path == "" {
		return key
	}
	return f.path + "." + key
}

func (f *fields) fail(key, want string) {
	if f.r.err == nil {
		f.r.err = fmt.Errorf("%s: want %s, got %v", f.at(key), want, f.m[key])
	}
}

func (f *fields) take(key string) (any, bool) {
	f.read = append(f.read, key)
	v, ok := f.m[key]
	return v, ok && v != nil
}

func (f *fields) str(key string) string {
	v, ok := f.take(key)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		f.fail(key, "a string")
	}
	return s
}

// integer reads a whole number that fits an int32.
func (f *fields) integer(key string) (int32, bool) {
	v, ok := f.take(key)
	if !ok {
		return 0, false
	}
	n, isInt := toInt32(v)
	if !isInt {
		f.fail(key, "a whole number")
	}
	return n, isInt
}

func toInt32(v any) (int32, bool) {
	switch n := v.(type) {
	case int:
		if n >= math.MinInt32 && n <= math.MaxInt32 {
			return int32(n), true
		}
	case float64:
		if n == math.Trunc(n) && n >= math.MinInt32 && n <= math.MaxInt32 {
			return int32(n), true
		}
	}
	return 0, false
}

func (f *fields) boolean(key string) (value, set bool) {
	v, ok := f.take(key)
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		f.fail(key, "true or false")
	}
	return b, isBool
}

// intOrString reads a Kubernetes IntOrString (targetPort) as text.
func (f *fields) intOrString(key string) string {
	v, ok := f.take(key)
	if !ok {
		return ""
	}
	if s, isStr := v.(string); isStr {
		return s
	}
	if n, isInt := toInt32(v); isInt {
		return strconv.Itoa(int(n))
	}
	f.fail(key, "a port number or a port name")
	return ""
}

func (f *fields) strMap(key string) map[string]string {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		f.fail(key, "a mapping of strings")
		return nil
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, isStr := e.(string)
		if !isStr {
			f.fail(key, "a mapping of strings")
			return nil
		}
		out[k] = s
	}
	return out
}

func (f *fields) child(key string) (fields, bool) {
	v, ok := f.take(key)
	if !ok {
		return fields{r: f.r, path: f.at(key)}, false
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		f.fail(key, "a mapping")
		return fields{r: f.r, path: f.at(key)}, false
	}
	return fields{m: m, path: f.at(key), r: f.r}, true
}

func (f *fields) list(key string) []fields {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	items, isList := v.([]any)
	if !isList {
		f.fail(key, "a list")
		return nil
	}
	out := make([]fields, 0, len(items))
	for i, item := range items {
		m, isMap := item.(map[string]any)
		if !isMap {
			f.fail(key, "a list of mappings")
			return nil
		}
		out = append(out, fields{m: m, path: fmt.Sprintf("%s[%d]", f.at(key), i), r: f.r})
	}
	return out
}

func (f *fields) strList(key string) []string {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	items, isList := v.([]any)
	var out []string
	for _, item := range items {
		s, isStr := item.(string)
		if !isStr {
			isList = false
			break
		}
		out = append(out, s)
	}
	if !isList {
		f.fail(key, "a list of strings")
	}
	return out
}

// ignore names a field as ignored (with why, when it helps).
func (f *fields) ignore(key, why string) {
	f.read = append(f.read, key)
	if _, ok := f.m[key]; ok {
		name := f.at(key)
		if why != "" {
			name += " (" + why + ")"
		}
		f.r.ignored = append(f.r.ignored, name)
	}
}

// done names every key of the mapping that was not read as ignored.
func (f *fields) done() {
	var rest []string
	for k := range f.m {
		if !slices.Contains(f.read, k) {
			rest = append(rest, f.at(k))
		}
	}
	sort.Strings(rest)
	f.r.ignored = append(f.r.ignored, rest...)
}
