// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

// bytesPerInstance is the store's heap per instance at 10,000 instances
// over 100 services (the instance, its derived endpoint, their indexes,
// and the request log's share), as measured for docs/benchmarks.md,
// "Memory per instance". TestMemoryPerInstance fails 50% above it.
const bytesPerInstance = 3500

// TestMemoryPerInstance: a regression test, not a benchmark: the bytes
// the store holds per instance must not grow past the documented figure
// by half.
func TestMemoryPerInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store with 10,000 instances")
	}
	profile := os.Getenv("SVCREG_HEAP_PROFILE") // where the bytes are: go tool pprof -sample_index=inuse_space
	if profile != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1 // every allocation, not a sample
	}
	before := liveHeap()
	s := benchStore(t, 10000, 100)
	after := liveHeap()
	got := float64(after-before) / 10000
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			t.Fatal(err)
		}
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	runtime.KeepAlive(s)
	t.Logf("%.0f bytes per instance (documented %d)", got, bytesPerInstance)
	if got > 1.5*bytesPerInstance {
		t.Errorf("the store holds %.0f bytes per instance, over 1.5x the documented %d: find what grew (go test -memprofile), or document the new figure with why", got, bytesPerInstance)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
