// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// fillServices creates n services in namespace ns, each selecting one
// instance of its own: n EndpointSlices of one endpoint.
func fillServices(b *testing.B, ts *testServer, ns string, n int) {
	b.Helper()
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			name := fmt.Sprintf("s%05d", i)
			sel := map[string]string{"app": name}
			if _, err := ts.client.CreateService(context.Background(), &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
				Name: name, Namespace: ns, Selector: sel, Ports: []*svcregv1.ServicePort{{Name: "http", Port: 80}}}}); err != nil {
				return err
			}
			_, err := ts.client.CreateInstance(context.Background(), &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
				Name: name + "-1", Namespace: ns, Ip: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Labels: sel}})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkKubernetesListEndpointSlices lists 10,000 EndpointSlices in JSON
// and in protobuf over HTTP, as an informer's first list does.
//
//	go test ./server -run '^$' -bench KubernetesListEndpointSlices -benchtime 20x
func BenchmarkKubernetesListEndpointSlices(b *testing.B) {
	ts := startServer(b, Config{})
	fillServices(b, ts, "bench", 10000)
	for _, accept := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		b.Run(accept, func(b *testing.B) {
			var size int64
			for b.Loop() {
				req, _ := http.NewRequest("GET", ts.base+"/apis/discovery.k8s.io/v1/endpointslices", nil)
				req.Header.Set("Accept", accept)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				size, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("list: %v %d", err, resp.StatusCode)
				}
			}
			b.ReportMetric(float64(size), "bytes/list")
		})
	}
}

// BenchmarkKubernetesWatchFanout: 1,000 watches of a namespace's
// EndpointSlices (as 1,000 informers hold); each iteration changes one
// endpoint and waits until every watch has the event. It reports the
// delivery latency's median and p99 over every watcher and change.
//
//	go test ./server -run '^$' -bench KubernetesWatchFanout -benchtime 100x
func BenchmarkKubernetesWatchFanout(b *testing.B) {
	const watchers = 1000
	ts := startServer(b, Config{Limits: Limits{Connections: 4 * watchers, ConnectionsPerClient: 4 * watchers}})
	fillServices(b, ts, "bench", 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: watchers, MaxConnsPerHost: 0}
	client := &http.Client{Transport: tr}
	arrivals := make(chan time.Time, watchers)
	var ready sync.WaitGroup
	for range watchers {
		ready.Add(1)
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.base+"/apis/discovery.k8s.io/v1/namespaces/bench/endpointslices?watch=1&resourceVersion=0", nil)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			defer resp.Body.Close()
			lines := bufio.NewScanner(resp.Body)
			lines.Buffer(make([]byte, 1<<20), 1<<20)
			for n := 1; lines.Scan(); n++ {
				switch {
				case n == 100: // the initial ADDED events
					ready.Done()
				case n > 100:
					arrivals <- time.Now()
				}
			}
		}()
	}
	ready.Wait()
	var latencies []time.Duration
	serving := true // as created
	for b.Loop() {
		serving = !serving // every update is a change
		inst := &svcregv1.Instance{Name: "s00000-1", Namespace: "bench", Ip: "10.0.0.0", Labels: map[string]string{"app": "s00000"}, Ready: proto.Bool(serving)}
		start := time.Now()
		if _, err := ts.client.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{Instance: inst}); err != nil {
			b.Fatal(err)
		}
		for range watchers {
			latencies = append(latencies, (<-arrivals).Sub(start))
		}
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
