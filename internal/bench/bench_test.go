// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"testing"
)

// TestRunInProcess runs a small benchmark against an in-process registry:
// every expected event arrives and the figures are consistent.
func TestRunInProcess(t *testing.T) {
	res, err := Run(context.Background(), Config{Watchers: 20, Conns: 2, Services: 2, Endpoints: 3, Updates: 40, Rate: 0, Writers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExpectedEvents != 20*40/2 || res.Events != res.ExpectedEvents || res.WatchersDropped != 0 {
		t.Fatalf("events %d of %d, dropped %d", res.Events, res.ExpectedEvents, res.WatchersDropped)
	}
	if !(res.P50Ms <= res.P90Ms && res.P90Ms <= res.P99Ms && res.P99Ms <= res.MaxMs) {
		t.Errorf("percentiles out of order: %+v", res)
	}
	if res.BytesPerEvent < 20 || res.BytesPerEvent > 200 {
		t.Errorf("bytes per event %.1f", res.BytesPerEvent)
	}
	if res.HeapOf != "process" || res.HeapBytes == 0 {
		t.Errorf("heap %d of %q", res.HeapBytes, res.HeapOf)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{Services: 0, Endpoints: 1}, {Services: 1, Endpoints: 0}, {Services: 1, Endpoints: 1, Rate: -1}} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestParseSample: the Prometheus text format writes sample values as
// floats; a byte count in exponent form (what the Go client writes past
// 10^6) was refused before.
func TestParseSample(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"5.88996e+06", 5889960, false},
		{"1234", 1234, false},
		{" 7.5e+08\n", 750000000, false},
		{"NaN", 0, true},
		{"-1", 0, true},
		{"+Inf", 0, true},
		{"lots", 0, true},
	} {
		got, err := parseSample(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSample(%q) = %d, %v; want %d (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseSample(f *testing.F) {
	for _, s := range []string{"5.88996e+06", "0", "NaN", "1e400", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseSample(s) // never panics
	})
}
