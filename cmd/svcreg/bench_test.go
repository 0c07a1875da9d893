// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/svcreg/svcreg/internal/bench"
)

// TestBenchOwnProcess runs `svcreg bench --own-process` small: the
// registry runs as `svcreg serve` on a data dir of its own, every event
// arrives, the server's own RSS and CPU are read from its /metrics, and
// the restart on its data dir is timed and measured.
func TestBenchOwnProcess(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "bench", "--own-process", "--json",
		"--services", "3", "--endpoints", "4", "--watchers", "6", "--updates", "30", "--rate", "0").Output()
	if err != nil {
		t.Fatalf("svcreg bench --own-process: %v\n%s", err, out)
	}
	var res bench.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.ExpectedEvents != 6*30/3 || res.Events != res.ExpectedEvents {
		t.Errorf("events %d of %d", res.Events, res.ExpectedEvents)
	}
	if res.HeapOf != "server" || res.HeapBytes == 0 || res.ServerRSSPeakBytes < res.HeapBytes || res.ServerCPUUsPerEvent <= 0 {
		t.Errorf("the server's own figures: heap %d (%s), RSS peak %d, CPU %.1f us/event", res.HeapBytes, res.HeapOf, res.ServerRSSPeakBytes, res.ServerCPUUsPerEvent)
	}
	if res.RestartReadyMs <= 0 || res.RestartRSSBytes == 0 || res.RestartBytesPerInst != float64(res.RestartRSSBytes)/12 {
		t.Errorf("the restart: ready in %.0f ms, RSS %d, %.0f per instance", res.RestartReadyMs, res.RestartRSSBytes, res.RestartBytesPerInst)
	}
}
