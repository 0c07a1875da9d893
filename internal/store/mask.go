// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/svcreg/svcreg/internal/validation"
)

// mergeMask copies the fields of src named by paths into dst (AIP-134):
// a path names a field, or a field of a nested message with dots; a field
// named but unset in src is cleared. Map and repeated fields are replaced
// whole. Paths in skip (identity, output-only and precondition fields) are
// ignored. An empty mask or "*" replaces every field but the skipped ones.
func mergeMask(dst, src proto.Message, paths []string, skip map[string]bool, field validation.Path) validation.ErrorList {
	src = proto.Clone(src) // dst may share src's values from here on
	if len(paths) == 0 || len(paths) == 1 && paths[0] == "*" {
		paths = nil
		fields := dst.ProtoReflect().Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			paths = append(paths, string(fields.Get(i).Name()))
		}
	}
	var errs validation.ErrorList
	for _, path := range paths {
		parts := strings.Split(path, ".")
		if skip[parts[0]] {
			continue
		}
		d, s := dst.ProtoReflect(), src.ProtoReflect()
		hasSrc := true // false once an enclosing message is unset in src
		for i, name := range parts {
			fd := d.Descriptor().Fields().ByName(protoreflect.Name(name))
			if fd == nil {
				errs = append(errs, validation.Invalid(field, path, "no field "+name+" in "+string(d.Descriptor().Name())))
				break
			}
			if i == len(parts)-1 {
				if hasSrc && s.Has(fd) {
					d.Set(fd, s.Get(fd))
				} else {
					d.Clear(fd)
				}
				break
			}
			if fd.Message() == nil || fd.IsList() || fd.IsMap() {
				errs = append(errs, validation.Invalid(field, path, name+" has no fields"))
				break
			}
			d = d.Mutable(fd).Message()
			hasSrc = hasSrc && s.Has(fd)
			if hasSrc {
				s = s.Get(fd).Message()
			}
		}
	}
	return errs
}
