// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Defaults of the options.
const (
	DefaultInactiveWindow = time.Second
	DefaultLBLCExpiration = 24 * time.Hour
	DefaultLBLCMaxEntries = 16384
	DefaultMHTableSize    = 65537 // a prime, as ip_vs_mh's IP_VS_MH_TAB_SIZE
	maxTableSize          = 1<<24 - 3
)

// Config is a scheduler's configuration (docs/ipvs.md, "Configuration"),
// as JSON in gRPC service config and xDS. Durations are JSON strings such
// as "1s" or "300s". HashKey, SecondaryKey and ClientID say where an
// adapter takes a request's keys from (Request); the engine reads none.
type Config struct {
	// Scheduler is one of Schedulers. Required.
	Scheduler string `json:"scheduler"`
	// HashKey is the request metadata header whose value is the hashing key
	// (dh, sh, mh, lblc, lblcr, persistence).
	HashKey string `json:"hashKey,omitempty"`
	// SecondaryKey is a second header mixed into the hash (sh-port, mh-port).
	SecondaryKey string `json:"secondaryKey,omitempty"`
	// Fallback (sh, mh): when a key's backend is unavailable, use the key's
	// next choice instead of failing.
	Fallback bool `json:"fallback,omitempty"`
	// ClientID is this client's identity when a request has no hash key;
	// default a random per-process id.
	ClientID string `json:"clientId,omitempty"`
	// InactiveWindow is how long a completed RPC counts as inactive
	// (TIME_WAIT's analog); "0s" disables the inactive count.
	InactiveWindow Duration `json:"inactiveWindow,omitempty"`
	// PersistenceTimeout (ipvsadm -p) pins a key to its backend for this
	// long after its last use; 0 disables persistence.
	PersistenceTimeout Duration `json:"persistenceTimeout,omitempty"`
	// ExpireQuiescent re-picks a persistent key whose backend is quiesced.
	ExpireQuiescent bool `json:"expireQuiescent,omitempty"`
	// LBLCExpiration is how long an unused lblc/lblcr entry lives.
	LBLCExpiration Duration `json:"lblcExpiration,omitempty"`
	// LBLCMaxEntries bounds the lblc/lblcr and persistence tables.
	LBLCMaxEntries int `json:"lblcMaxEntries,omitempty"`
	// MHTableSize is the Maglev lookup table size, a prime.
	MHTableSize int `json:"mhTableSize,omitempty"`
	// OutlierDetection ejects backends whose calls fail (gRFC A50); nil:
	// none. Adapters that see call outcomes run it (Outliers).
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// Equal reports whether two configurations are the same.
func (c *Config) Equal(o *Config) bool {
	a, b := *c, *o
	a.OutlierDetection, b.OutlierDetection = nil, nil
	if a != b || (c.OutlierDetection == nil) != (o.OutlierDetection == nil) {
		return false
	}
	return c.OutlierDetection == nil || reflect.DeepEqual(*c.OutlierDetection, *o.OutlierDetection)
}

// Duration is a time.Duration that reads and writes JSON strings ("1.5s").
type Duration time.Duration

// MarshalJSON renders the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &durationError{value: string(b)}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &durationError{value: string(b)}
	}
	*d = Duration(v)
	return nil
}

// durationError is a value that is not a duration string.
type durationError struct{ value string }

func (e *durationError) Error() string {
	return fmt.Sprintf("%s is not a duration such as \"1s\"", e.value)
}

// Complete is c as a client that received it as JSON has it: every option
// it leaves unset at its default, and validated. The node agent runs the
// engine with what gRPC clients get in their service config.
func Complete(c Config) (*Config, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return ParseConfig(js)
}

// ParseConfig parses and validates the policy's JSON configuration.
func ParseConfig(js json.RawMessage) (*Config, error) {
	cfg := &Config{
		InactiveWindow: Duration(DefaultInactiveWindow),
		LBLCExpiration: Duration(DefaultLBLCExpiration),
		LBLCMaxEntries: DefaultLBLCMaxEntries,
		MHTableSize:    DefaultMHTableSize,
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var ute *json.UnmarshalTypeError
		var de *durationError
		switch {
		case errors.As(err, &de):
			// json does not say which field a custom decoder failed on.
			var raw map[string]json.RawMessage
			json.Unmarshal(js, &raw)
			for _, field := range []string{"inactiveWindow", "persistenceTimeout", "lblcExpiration"} {
				var d Duration
				if v, ok := raw[field]; ok && d.UnmarshalJSON(v) != nil {
					return nil, fmt.Errorf("%s: invalid config: %s: %s", "ipvs", field, de.Error())
				}
			}
			return nil, fmt.Errorf("%s: invalid config: %s", "ipvs", de.Error())
		case errors.As(err, &ute) && ute.Field != "":
			return nil, fmt.Errorf("%s: invalid config: %s: want %s, got %s", "ipvs", ute.Field, ute.Type, ute.Value)
		}
		return nil, fmt.Errorf("%s: invalid config: %v", "ipvs", err)
	}
	if cfg.OutlierDetection != nil {
		cfg.OutlierDetection.withDefaults()
		if err := cfg.OutlierDetection.validate(); err != nil {
			return nil, err
		}
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: invalid config: %s: %s", "ipvs", field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Scheduler == "":
		return bad("scheduler", "required; one of %v", Schedulers)
	case !Valid(c.Scheduler):
		return bad("scheduler", "unknown scheduler %q; want one of %v", c.Scheduler, Schedulers)
	case !validHeader(c.HashKey):
		return bad("hashKey", "%q is not a lower-case gRPC metadata key", c.HashKey)
	case !validHeader(c.SecondaryKey):
		return bad("secondaryKey", "%q is not a lower-case gRPC metadata key", c.SecondaryKey)
	case c.SecondaryKey != "" && c.HashKey == "":
		return bad("secondaryKey", "needs hashKey")
	case c.Fallback && !HasFallback(c.Scheduler):
		return bad("fallback", "only the sh and mh schedulers have a fallback, not %q", c.Scheduler)
	case c.InactiveWindow < 0:
		return bad("inactiveWindow", "must not be negative")
	case c.PersistenceTimeout < 0:
		return bad("persistenceTimeout", "must not be negative")
	case c.LBLCExpiration <= 0:
		return bad("lblcExpiration", "must be positive")
	case c.LBLCMaxEntries < 1 || c.LBLCMaxEntries > 1<<24:
		return bad("lblcMaxEntries", "must be between 1 and %d", 1<<24)
	case c.MHTableSize < 7 || c.MHTableSize > maxTableSize || !isPrime(c.MHTableSize):
		return bad("mhTableSize", "%d is not a prime between 7 and %d", c.MHTableSize, maxTableSize)
	}
	return nil
}

func validHeader(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
