// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package balancer

import (
	"encoding/json"

	"google.golang.org/grpc/serviceconfig"

	"github.com/svcreg/svcreg/internal/ipvs"
)

// Name is the policy's name in service config.
const Name = "ipvs"

// Schedulers are the scheduler names, as ipvsadm(8) spells them.
var Schedulers = ipvs.Schedulers

// Defaults of the options.
const (
	DefaultInactiveWindow = ipvs.DefaultInactiveWindow
	DefaultLBLCExpiration = ipvs.DefaultLBLCExpiration
	DefaultLBLCMaxEntries = ipvs.DefaultLBLCMaxEntries
	DefaultMHTableSize    = ipvs.DefaultMHTableSize
)

// Config is the policy's configuration (docs/ipvs.md, "Configuration"): the
// scheduler engine's, as gRPC service config carries it. Durations are JSON
// strings such as "1s" or "300s".
type Config struct {
	serviceconfig.LoadBalancingConfig `json:"-"`
	ipvs.Config
}

// Duration is a time.Duration that reads and writes JSON strings ("1.5s").
type Duration = ipvs.Duration

// ParseConfig parses and validates the policy's JSON configuration.
func ParseConfig(js json.RawMessage) (*Config, error) {
	c, err := ipvs.ParseConfig(js)
	if err != nil {
		return nil, err
	}
	return &Config{Config: *c}, nil
}
