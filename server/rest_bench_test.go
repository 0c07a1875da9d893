// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkRESTGetBesideWatches measures REST GETs of a service while
// 5,000 REST watches of it are open, and reports their p99.
//
//	go test -run XXX -bench RESTGetBesideWatches -benchtime 2000x ./server
func BenchmarkRESTGetBesideWatches(b *testing.B) {
	ts := startServer(b, Config{})
	ts.mustCreateService(b, webSvc())
	openRESTWatches(b, ts, 5000)
	url := "http://" + ts.HTTPAddr() + "/v1/namespaces/shop/services/web"
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET: %v %v", resp, err)
		}
		resp.Body.Close()
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ts.Watchers()), "watches")
}
