// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func adsNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%d.shop:80", i)
	}
	return names
}

// TestXDSBounds: an ADS request with more names than a request may carry,
// or a stream subscribing to more than a stream may, ends with
// RESOURCE_EXHAUSTED naming the limit; ADS streams count with the
// watches. Before, 200 streams x 60,000 names took a server from 216 MB
// to 1.93 GB, and ADS streams were not counted at all.
func TestXDSBounds(t *testing.T) {
	ts := startServer(t, Config{Limits: Limits{Watches: 3, XDSNamesPerRequest: 100, XDSNamesPerStream: 150}})
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(ts.conn)
	// send opens a stream, sends the requests and returns how it ended
	// (nil: still open after the last one was answered or waited on).
	send := func(reqs ...*discoveryv3.DiscoveryRequest) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := ads.StreamAggregatedResources(ctx)
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if err := st.Send(r); err != nil {
				break
			}
		}
		for range 10 { // answers to the first requests, then the end
			if _, err = st.Recv(); err != nil {
				return err
			}
		}
		return nil
	}
	tests := []struct {
		name string
		reqs []*discoveryv3.DiscoveryRequest
		want string
	}{
		{"a request with too many names", []*discoveryv3.DiscoveryRequest{{TypeUrl: resourcev3.ListenerType, ResourceNames: adsNames(101)}},
			"at most 100 per request (--max-xds-names)"},
		{"a stream with too many names", []*discoveryv3.DiscoveryRequest{
			{TypeUrl: resourcev3.ListenerType, ResourceNames: adsNames(100)},
			{TypeUrl: resourcev3.ClusterType, ResourceNames: adsNames(51)}},
			"at most 150 (--max-xds-names-per-stream)"},
		{"a name too long", []*discoveryv3.DiscoveryRequest{{TypeUrl: resourcev3.ListenerType, ResourceNames: []string{strings.Repeat("x", 600)}}},
			"resource_names[0]: 600 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := send(tt.reqs...)
			if c := status.Code(err); (c != codes.ResourceExhausted && c != codes.InvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("the stream ended with %v, want an error saying %q", err, tt.want)
			}
		})
	}
	t.Run("ADS streams count as watches", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := range 4 { // --max-watches 3
			st, err := ads.StreamAggregatedResources(ctx)
			if err == nil {
				err = st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"a.shop:80"}})
			}
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			_, err = st.Recv() // the stream is open on the server (or refused)
			if i < 3 && err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if i == 3 {
				if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "--max-watches") {
					t.Errorf("a stream past --max-watches: %v", err)
				}
			}
		}
	})
}
