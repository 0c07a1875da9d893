// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	sotw "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	xdsserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/store"
)

// TestMakeBeforeBreak: an ADS client subscribed to every Listener,
// Cluster and ClusterLoadAssignment sees a new service's Cluster and
// endpoints before the Listener that routes to them, and a removed
// service's Listener go before its Cluster and endpoints. Before, the
// feed handed the three types to the caches in map order. (Each change
// is made once the client's three watches are open again: in
// state-of-the-world xDS a type whose last response is not yet ACKed
// gets the change only with its next request.)
func TestMakeBeforeBreak(t *testing.T) {
	ips, _ := store.ParseIPRange("10.96.0.0/16")
	ports, _ := store.ParsePortRange("30000-32767")
	st, err := store.New(store.Config{ServiceIPs: ips, NodePorts: ports})
	if err != nil {
		t.Fatal(err)
	}
	feed := NewFeed(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go feed.Run(ctx)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, xdsserver.NewServer(ctx, feed.Cache(), nil, sotw.WithOrderedADS()))
	go srv.Serve(lis)
	defer srv.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ads, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "order-watcher"}
	types := []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.EndpointType}
	for _, typ := range types { // wildcard: every resource of the type
		if err := ads.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typ}); err != nil {
			t.Fatal(err)
		}
	}
	const name = "ordered.shop:80"
	// recv takes a response, says whether it holds the service's resource,
	// and ACKs it.
	recv := func() (string, bool) {
		t.Helper()
		resp, err := ads.Recv()
		if err != nil {
			t.Fatal(err)
		}
		present := false
		for _, res := range resp.GetResources() {
			m, err := res.UnmarshalNew()
			if err != nil {
				t.Fatal(err)
			}
			switch r := m.(type) {
			case interface{ GetClusterName() string }:
				present = present || r.GetClusterName() == name
			case interface{ GetName() string }:
				present = present || r.GetName() == name
			}
		}
		if err := ads.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
		return resp.GetTypeUrl(), present
	}
	// watching waits until every type's watch is open again.
	watching := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			open := 0
			for _, typ := range types {
				open += feed.caches[typ].NumWildcardWatches()
			}
			if open == len(types) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the client's watches did not open")
			}
		}
	}
	// until reads responses until each of types has shown (or dropped)
	// the service, and returns the order in which they did.
	until := func(present bool, types ...string) []string {
		var order []string
		done := map[string]bool{}
		for len(done) < len(types) {
			if typ, p := recv(); p == present && !done[typ] {
				done[typ] = true
				order = append(order, typ)
			}
		}
		return order
	}
	for range types {
		recv() // each type's empty state
	}
	watching()
	if _, err := st.Apply(&storev1.Command{Op: &storev1.Command_CreateService{CreateService: &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
		Name: "ordered", Namespace: "shop", Uid: "u1", Ports: []*svcregv1.ServicePort{{Port: 80}}}}}}); err != nil {
		t.Fatal(err)
	}
	if got := until(true, types...); got[len(got)-1] != resourcev3.ListenerType {
		t.Errorf("a new service's resources arrived as %v: the Listener must come last", got)
	}
	watching()
	if _, err := st.Apply(&storev1.Command{Op: &storev1.Command_DeleteService{DeleteService: &svcregv1.DeleteServiceRequest{Namespace: "shop", Name: "ordered"}}}); err != nil {
		t.Fatal(err)
	}
	// (A removed ClusterLoadAssignment is not announced in
	// state-of-the-world xDS: clients drop it with its Cluster.)
	if got := until(false, resourcev3.ListenerType, resourcev3.ClusterType); got[0] != resourcev3.ListenerType {
		t.Errorf("a deleted service's resources went as %v: the Listener must go first", got)
	}
}
