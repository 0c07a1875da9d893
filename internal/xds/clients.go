// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// Clients follows the xDS streams of a server: each client's node, what
// it subscribed to, the versions it was sent and accepted, and the last
// response it rejected with its reason (a client stuck on an old view
// says why: `svcreg xds clients`). Its methods are go-control-plane
// server callbacks.
type Clients struct {
	now func() time.Time
	// maxNames bounds the names one stream subscribes to, all types
	// together (0: no bound).
	maxNames int

	mu      sync.Mutex
	streams map[int64]*clientState
}

type clientState struct {
	info  *svcregv1.XDSClient
	types map[string]*svcregv1.XDSTypeState
}

// maxReason bounds a NACK's reason as kept and shown.
const maxReason = 1024

// NewClients returns an empty tracker; a stream that subscribes to more
// than maxNamesPerStream names (all types together; 0: no bound) is ended.
func NewClients(maxNamesPerStream int) *Clients {
	return &Clients{now: time.Now, maxNames: maxNamesPerStream, streams: map[int64]*clientState{}}
}

// ErrTooManyNames: a stream subscribed to more names than its bound.
var ErrTooManyNames = errors.New("too many resource names on one xDS stream")

// OnStreamOpen records a new stream and its peer.
func (c *Clients) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	info := &svcregv1.XDSClient{Connected: timestamppb.New(c.now())}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		info.Peer = p.Addr.String()
	}
	c.mu.Lock()
	c.streams[id] = &clientState{info: info, types: map[string]*svcregv1.XDSTypeState{}}
	c.mu.Unlock()
	return nil
}

// OnStreamClosed forgets a stream.
func (c *Clients) OnStreamClosed(id int64, _ *corev3.Node) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}

// OnStreamRequest records a request: the node (sent on the first), the
// subscription, and an ACK (its version) or a NACK (its error).
func (c *Clients) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	if s == nil {
		return nil
	}
	if n := req.GetNode(); n != nil {
		s.info.NodeId, s.info.Zone = clip(n.GetId()), clip(n.GetLocality().GetZone())
		s.info.UserAgent = clip(strings.TrimSpace(n.GetUserAgentName() + " " + n.GetUserAgentVersion()))
	}
	if c.maxNames > 0 {
		total := len(req.GetResourceNames())
		for url, other := range s.types {
			if url != req.GetTypeUrl() {
				total += len(other.GetResourceNames())
			}
		}
		if total > c.maxNames {
			return fmt.Errorf("%w: this stream would subscribe to %d resource names, at most %d (--max-xds-names-per-stream)", ErrTooManyNames, total, c.maxNames)
		}
	}
	t := s.types[req.GetTypeUrl()]
	if t == nil {
		t = &svcregv1.XDSTypeState{TypeUrl: req.GetTypeUrl()}
		s.types[req.GetTypeUrl()] = t
	}
	t.ResourceNames = clipAll(req.GetResourceNames())
	if req.GetResponseNonce() == "" {
		return nil // a subscription, not an answer
	}
	if e := req.GetErrorDetail(); e != nil {
		t.NackedVersion, t.NackReason, t.Nacked = t.GetSentVersion(), clip(e.GetMessage()), timestamppb.New(c.now())
		return nil
	}
	t.AckedVersion, t.NackedVersion, t.NackReason, t.Nacked = req.GetVersionInfo(), "", "", nil
	return nil
}

// OnStreamResponse records the version sent.
func (c *Clients) OnStreamResponse(_ context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.streams[id]; s != nil {
		if t := s.types[req.GetTypeUrl()]; t != nil {
			t.SentVersion = resp.GetVersionInfo()
		}
	}
}

// List is every open stream, oldest first.
func (c *Clients) List() []*svcregv1.XDSClient {
	c.mu.Lock()
	out := make([]*svcregv1.XDSClient, 0, len(c.streams))
	for _, s := range c.streams {
		info := proto.Clone(s.info).(*svcregv1.XDSClient)
		for _, t := range s.types {
			info.Types = append(info.Types, proto.Clone(t).(*svcregv1.XDSTypeState))
		}
		slices.SortFunc(info.Types, func(a, b *svcregv1.XDSTypeState) int { return strings.Compare(a.GetTypeUrl(), b.GetTypeUrl()) })
		out = append(out, info)
	}
	c.mu.Unlock()
	slices.SortStableFunc(out, func(a, b *svcregv1.XDSClient) int {
		return a.GetConnected().AsTime().Compare(b.GetConnected().AsTime())
	})
	return out
}

func clip(s string) string {
	if len(s) > maxReason {
		return s[:maxReason] + "..."
	}
	return s
}

// clipAll keeps at most 100 names of a subscription, each clipped.
func clipAll(names []string) []string {
	out := make([]string, 0, min(len(names), 100))
	for _, n := range names[:min(len(names), 100)] {
		out = append(out, clip(n))
	}
	return out
}

// nackWaits is the cache the ADS serves from: the feed's, except that a
// rejection (NACK) of a first response, which carries no version, waits
// for the resources to change instead of being answered at once with
// the very resources it rejected (go-control-plane's LinearCache treats a
// request without a version as a client with nothing, and would resend
// in a loop as fast as the client NACKs). A NACK of a later response
// names the version it still has and waits already.
type nackWaits struct{ cache.Cache }

func (n nackWaits) CreateWatch(req *cache.Request, sub cache.Subscription, value chan cache.Response) (func(), error) {
	if req.GetErrorDetail() != nil && req.GetVersionInfo() == "" {
		req = proto.Clone(req).(*cache.Request)
		req.VersionInfo = "rejected"
	}
	return n.Cache.CreateWatch(req, sub, value)
}
