// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/svcreg/svcreg/internal/clock/clocktest"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		js      string
		wantErr string // a field name the error must mention
	}{
		{`{"scheduler":"wlc"}`, ""},
		{`{"scheduler":"sh","hashKey":"x-user","secondaryKey":"x-port","fallback":true,"mhTableSize":65537}`, ""},
		{`{"scheduler":"rr","persistenceTimeout":"300s","expireQuiescent":true,"clientId":"c1"}`, ""},
		{`{"scheduler":"lblcr","lblcExpiration":"1h","lblcMaxEntries":100,"inactiveWindow":"500ms"}`, ""},
		{`{}`, "scheduler"},
		{`{"scheduler":"random"}`, "scheduler"},
		{`{"scheduler":"rr","bogus":1}`, "bogus"},
		{`{"scheduler":"rr","hashKey":"X User"}`, "hashKey"},
		{`{"scheduler":"rr","secondaryKey":"x"}`, "secondaryKey"},
		{`{"scheduler":"rr","fallback":true}`, "fallback"},
		{`{"scheduler":"rr","inactiveWindow":"-1s"}`, "inactiveWindow"},
		{`{"scheduler":"rr","inactiveWindow":"soon"}`, "inactiveWindow"},
		{`{"scheduler":"rr","persistenceTimeout":"-5s"}`, "persistenceTimeout"},
		{`{"scheduler":"lblc","lblcExpiration":"0s"}`, "lblcExpiration"},
		{`{"scheduler":"lblc","lblcMaxEntries":0}`, "lblcMaxEntries"},
		{`{"scheduler":"mh","mhTableSize":65536}`, "mhTableSize"},
		{`{"scheduler":"mh","mhTableSize":5}`, "mhTableSize"},
		{`not json`, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.js, func(t *testing.T) {
			cfg, err := ParseConfig(json.RawMessage(tt.js))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			if !strings.Contains(err.Error(), "ipvs:") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q should name the policy and %q", err, tt.wantErr)
			}
		})
	}
	cfg, _ := ParseConfig(json.RawMessage(`{"scheduler":"rr"}`))
	if time.Duration(cfg.InactiveWindow) != DefaultInactiveWindow || cfg.MHTableSize != DefaultMHTableSize || cfg.LBLCMaxEntries != DefaultLBLCMaxEntries {
		t.Errorf("defaults: %+v", cfg)
	}
}

// FuzzParseConfig: any input is accepted (and then valid) or rejected with
// the policy's name; never a panic.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"scheduler":"wlc"}`, `{"scheduler":"sh","fallback":true}`, `{"scheduler":"mh","mhTableSize":7}`, `{`, `{"inactiveWindow":"1s"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, js string) {
		cfg, err := ParseConfig(json.RawMessage(js))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ipvs:") {
				t.Fatalf("error without the policy name: %v", err)
			}
			return
		}
		if cfg.validate() != nil {
			t.Fatalf("accepted an invalid config")
		}
		e := New(cfg, Options{Clock: clocktest.New()})
		defer e.Close()
		if _, err := e.Update(nil, []Backend{{Addr: "a", Info: DefaultEndpointInfo}}).Pick(Request{}); err != nil {
			t.Fatalf("one ready backend: %v", err)
		}
	})
}
