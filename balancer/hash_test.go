// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/metadata"
)

// TestHashKeySources: where the policy takes an RPC's keys from. Without
// a key, sh hashes the client identity (every RPC lands on one backend)
// and dh the method (one backend per method); the hashKey header, and
// WithRequestKey, spread the keys.
func TestHashKeySources(t *testing.T) {
	backendsOf := func(p balancer.Picker, infos func(i int) balancer.PickInfo) map[string]int {
		got := map[string]int{}
		for i := range 50 {
			res, err := p.Pick(infos(i))
			if err != nil {
				t.Fatal(err)
			}
			got[res.SubConn.(*fakeCCSubConn).addr]++
		}
		return got
	}
	plain := func(int) balancer.PickInfo {
		return balancer.PickInfo{Ctx: context.Background(), FullMethodName: "/svc/Method"}
	}
	byMethod := func(i int) balancer.PickInfo {
		return balancer.PickInfo{Ctx: context.Background(), FullMethodName: fmt.Sprint("/svc/Method", i)}
	}
	header := func(i int) balancer.PickInfo {
		return balancer.PickInfo{Ctx: metadata.AppendToOutgoingContext(context.Background(), "x-user", fmt.Sprint("user-", i)), FullMethodName: "/svc/Method"}
	}
	withKey := func(i int) balancer.PickInfo {
		return balancer.PickInfo{Ctx: WithRequestKey(context.Background(), fmt.Sprint("key-", i)), FullMethodName: "/svc/Method"}
	}
	sh := buildPolicy(t, Name, `{"scheduler":"sh","hashKey":"x-user"}`, 10, nil)
	dh := buildPolicy(t, Name, `{"scheduler":"dh"}`, 10, nil)
	for _, tt := range []struct {
		name   string
		p      balancer.Picker
		infos  func(int) balancer.PickInfo
		spread bool
	}{
		{"sh, the client identity", sh, plain, false},
		{"sh, the hashKey header", sh, header, true},
		{"sh, WithRequestKey", sh, withKey, true},
		{"dh, one method", dh, plain, false},
		{"dh, many methods", dh, byMethod, true},
	} {
		if got := backendsOf(tt.p, tt.infos); (len(got) > 1) != tt.spread {
			t.Errorf("%s: %v", tt.name, got)
		}
	}
}

// TestHeaderKeyedPicksDoNotAllocate: reading the hashKey header costs no
// allocation (the metadata is read in place), for every scheduler that
// uses it, once its tables are warm.
func TestHeaderKeyedPicksDoNotAllocate(t *testing.T) {
	for _, s := range []string{"sh", "dh", "mh", "lblc", "lblcr"} {
		p := buildPolicy(t, Name, fmt.Sprintf(`{"scheduler":%q,"hashKey":"x-key","secondaryKey":"x-port"}`, s), 50, nil)
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-key", "user-42")
		ctx = metadata.AppendToOutgoingContext(ctx, "x-port", "8443")
		ctx = metadata.NewOutgoingContext(ctx, metadata.Join(metadata.Pairs("other", "x"), mustOutgoing(ctx)))
		info := balancer.PickInfo{Ctx: ctx, FullMethodName: "/svc/Method"}
		pick := func() {
			res, err := p.Pick(info)
			if err != nil {
				t.Fatal(err)
			}
			if res.Done != nil {
				res.Done(balancer.DoneInfo{})
			}
		}
		pick() // warm: lblc/lblcr remember the key
		if n := testing.AllocsPerRun(200, pick); n != 0 {
			t.Errorf("%s: %v allocations per header-keyed pick, want 0", s, n)
		}
	}
}

func mustOutgoing(ctx context.Context) metadata.MD {
	md, _ := metadata.FromOutgoingContext(ctx)
	return md
}

// TestHeaderValue: the first value of a header, from the metadata set or
// the pairs appended since, as metadata.ValueFromOutgoingContext finds it.
func TestHeaderValue(t *testing.T) {
	base := metadata.NewOutgoingContext(context.Background(), metadata.Pairs("x-key", "from-md", "x-key", "second"))
	appended := metadata.AppendToOutgoingContext(context.Background(), "X-Key", "from-append")
	both := metadata.AppendToOutgoingContext(base, "x-key", "appended-later")
	for _, tt := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"none", context.Background(), ""},
		{"metadata", base, "from-md"},
		{"appended (lower-cased)", appended, "from-append"},
		{"metadata first", both, "from-md"},
		{"other key", metadata.AppendToOutgoingContext(context.Background(), "x-other", "v"), ""},
	} {
		if got := headerValue(tt.ctx, "x-key"); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		var want string
		if vals := metadata.ValueFromOutgoingContext(tt.ctx, "x-key"); len(vals) > 0 {
			want = vals[0]
		}
		if got := headerValue(tt.ctx, "x-key"); got != want {
			t.Errorf("%s: %q, but grpc-go reads %q", tt.name, got, want)
		}
	}
}
