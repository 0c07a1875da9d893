// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"context"
	_ "unsafe" // go:linkname

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/metadata"

	"github.com/svcreg/svcreg/internal/ipvs"
)

type requestKeyCtx struct{}

// requestKeyHash is a request key, hashed once when it is attached.
type requestKeyHash struct{ h uint64 }

// WithRequestKey returns a context whose RPCs use key as their hashing
// and persistence key (sh, mh, dh, lblc, lblcr, persistence), instead of
// the hashKey header. The key is hashed here, once for every RPC made with
// the context, where a metadata header is hashed per pick (neither
// allocates).
func WithRequestKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, requestKeyCtx{}, requestKeyHash{ipvs.Hash(key)})
}

// requestKey hashes an RPC's key: WithRequestKey's, else the hashKey
// header, else the client identity (source) or the method (destination);
// the secondaryKey header is mixed in when present.
func (p *picker) requestKey(info balancer.PickInfo, dest bool) uint64 {
	cfg := p.cfg
	var h uint64
	if k, ok := info.Ctx.Value(requestKeyCtx{}).(requestKeyHash); ok {
		h = k.h
	} else if v := headerValue(info.Ctx, cfg.HashKey); v != "" {
		h = ipvs.Hash(v)
	} else if dest {
		h = ipvs.Hash(info.FullMethodName)
	} else {
		h = p.clientKey
	}
	if v := headerValue(info.Ctx, cfg.SecondaryKey); v != "" {
		h = ipvs.Mix(h, ipvs.Hash(v))
	}
	return h
}

// outgoingRaw is grpc-go's own accessor of a context's outgoing metadata
// as it is stored, without the copy metadata.ValueFromOutgoingContext
// makes (one allocation per pick, on the hottest path of a hashing
// scheduler). grpc-go exposes it only to itself (internal.
// FromOutgoingContextRaw); the link fails at build time, not at run time,
// if a grpc-go version renames it.
//
//go:linkname outgoingRaw google.golang.org/grpc/metadata.fromOutgoingContextRaw
func outgoingRaw(ctx context.Context) (metadata.MD, [][]string, bool)

// headerValue is the first value of an outgoing metadata header, read
// without copying. Keys are lower case in both the metadata and the pairs
// appended to it (AppendToOutgoingContext and Pairs lower-case them).
func headerValue(ctx context.Context, key string) string {
	if key == "" || ctx == nil {
		return ""
	}
	md, added, ok := outgoingRaw(ctx)
	if !ok {
		return ""
	}
	if vals := md[key]; len(vals) > 0 {
		return vals[0]
	}
	for _, kv := range added {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == key {
				return kv[i+1]
			}
		}
	}
	return ""
}
