// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"testing"
	"time"
)

// TestOutliers: gRFC A50's algorithm, case by case: each backend's calls
// in one interval (successes, failures), the configuration, and who is
// ejected after it.
func TestOutliers(t *testing.T) {
	fp := &FailurePercentageEjection{Threshold: 50, MinimumHosts: 3, RequestVolume: 10}
	sr := &SuccessRateEjection{}
	tests := []struct {
		name  string
		cfg   OutlierDetection
		calls [][2]int64 // per backend b0, b1, ...
		want  []int      // ejected backends
	}{
		{"failure percentage ejects the failing backend", OutlierDetection{FailurePercentage: fp, MaxEjectionPercent: 50},
			[][2]int64{{20, 0}, {20, 0}, {2, 18}}, []int{2}},
		{"below the request volume nothing counts", OutlierDetection{FailurePercentage: fp, MaxEjectionPercent: 50},
			[][2]int64{{20, 0}, {20, 0}, {0, 9}}, nil},
		{"too few hosts with the volume", OutlierDetection{FailurePercentage: fp, MaxEjectionPercent: 50},
			[][2]int64{{20, 0}, {1, 0}, {2, 18}}, nil},
		{"at the threshold is not above it", OutlierDetection{FailurePercentage: fp, MaxEjectionPercent: 50},
			[][2]int64{{20, 0}, {20, 0}, {10, 10}}, nil},
		{"max ejection percent: one of three at 10%", OutlierDetection{FailurePercentage: fp},
			[][2]int64{{20, 0}, {0, 20}, {0, 20}}, []int{1}},
		{"success rate: far below the mean", OutlierDetection{SuccessRate: sr, MaxEjectionPercent: 50},
			[][2]int64{{100, 0}, {100, 0}, {100, 0}, {100, 0}, {20, 80}}, []int{4}},
		{"success rate: within the spread", OutlierDetection{SuccessRate: sr, MaxEjectionPercent: 50},
			[][2]int64{{100, 0}, {95, 5}, {97, 3}, {99, 1}, {90, 10}}, nil},
		{"unset enforcement defaults to 100", OutlierDetection{MaxEjectionPercent: 50,
			FailurePercentage: &FailurePercentageEjection{Threshold: 50, MinimumHosts: 3, RequestVolume: 10, EnforcementPercentage: 0}},
			[][2]int64{{20, 0}, {20, 0}, {0, 20}}, []int{2}}, // 0 means the default, 100
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOutliers(tt.cfg)
			var addrs []string
			for i, c := range tt.calls {
				addr := fmt.Sprintf("b%d", i)
				addrs = append(addrs, addr)
				h := o.Host(addr)
				for range c[0] {
					h.Record(true)
				}
				for range c[1] {
					h.Record(false)
				}
			}
			o.Evaluate(time.Unix(100, 0), addrs)
			for i, a := range addrs {
				want := false
				for _, w := range tt.want {
					want = want || w == i
				}
				if o.Ejected(a) != want {
					t.Errorf("%s ejected: %v, want %v", a, o.Ejected(a), want)
				}
			}
		})
	}
}

// TestOutlierEjectionTime: an ejected backend returns after the base
// ejection time; ejected again right away, it stays out twice as long;
// its multiplier decays while it behaves.
func TestOutlierEjectionTime(t *testing.T) {
	o := NewOutliers(OutlierDetection{Interval: Duration(time.Second), BaseEjectionTime: Duration(10 * time.Second), MaxEjectionPercent: 50,
		FailurePercentage: &FailurePercentageEjection{Threshold: 50, MinimumHosts: 3, RequestVolume: 10}})
	addrs := []string{"a", "b", "c"}
	now := time.Unix(1000, 0)
	interval := func(failing bool) bool {
		for _, a := range addrs {
			h := o.Host(a)
			for range 20 {
				h.Record(!(failing && a == "c"))
			}
		}
		now = now.Add(time.Second)
		return o.Evaluate(now, addrs)
	}
	if !interval(true) || !o.Ejected("c") {
		t.Fatal("c not ejected")
	}
	for range 9 { // 9 more seconds: still out (c gets no calls while out)
		interval(false)
	}
	if !o.Ejected("c") {
		t.Fatal("c back before its base ejection time")
	}
	interval(false) // 10 s
	if o.Ejected("c") {
		t.Fatal("c not back after its base ejection time")
	}
	if !interval(true) || !o.Ejected("c") {
		t.Fatal("c not ejected again")
	}
	for range 19 {
		interval(false)
	}
	if !o.Ejected("c") {
		t.Fatal("c back before twice the base ejection time")
	}
	interval(false)
	if o.Ejected("c") {
		t.Fatal("c not back after twice the base ejection time")
	}
}
