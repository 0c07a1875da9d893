// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	// Registers the proto codec this one wraps.
	_ "google.golang.org/grpc/encoding/proto"
)

// encodedMessage is a message already in wire form: a watch event encoded
// once and sent as is to every watcher of its service.
type encodedMessage []byte

// codec is gRPC's proto codec, plus pass-through for encodedMessage. The
// bytes are shared between streams and never modified (SliceBuffer's Free
// is a no-op).
type codec struct{ encoding.CodecV2 }

func newCodec() codec { return codec{encoding.GetCodecV2("proto")} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(encodedMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	}
	return c.CodecV2.Marshal(v)
}
