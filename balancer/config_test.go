// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"encoding/json"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"
)

// TestRegisteredParser: the registered builder parses as ipvs.ParseConfig
// does (internal/ipvs/config_test.go has the cases).
func TestRegisteredParser(t *testing.T) {
	if _, err := balancer.Get(Name).(balancer.ConfigParser).ParseConfig(json.RawMessage(`{"scheduler":"x"}`)); err == nil {
		t.Errorf("registered parser accepted an unknown scheduler")
	}
	got, err := balancer.Get(Name).(balancer.ConfigParser).ParseConfig(json.RawMessage(`{"scheduler":"sh","hashKey":"x-user"}`))
	if c, ok := got.(*Config); err != nil || !ok || c.Scheduler != "sh" || c.HashKey != "x-user" {
		t.Errorf("parsed %#v, %v", got, err)
	}
}

func TestEndpointInfo(t *testing.T) {
	ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: "10.0.0.1:80"}}}
	if info, ok := GetEndpointInfo(ep); ok || info != DefaultEndpointInfo {
		t.Errorf("no attribute: %+v %v", info, ok)
	}
	want := EndpointInfo{Weight: 7, UpperThreshold: 10, LowerThreshold: 5, Terminating: true, Zone: "z", Node: "n", Hostname: "h"}
	if got, ok := GetEndpointInfo(SetEndpointInfo(ep, want)); !ok || got != want {
		t.Errorf("round trip: %+v", got)
	}
}
