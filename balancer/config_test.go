package balancer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"

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
			if !strings.Contains(err.Error(), Name+":") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q should name the policy and %q", err, tt.wantErr)
			}
		})
	}
	cfg, _ := ParseConfig(json.RawMessage(`{"scheduler":"rr"}`))
	if time.Duration(cfg.InactiveWindow) != DefaultInactiveWindow || cfg.MHTableSize != DefaultMHTableSize || cfg.LBLCMaxEntries != DefaultLBLCMaxEntries {
		t.Errorf("defaults: %+v", cfg)
	}
	// The registered builder parses the same way.
	if _, err := balancer.Get(Name).(balancer.ConfigParser).ParseConfig(json.RawMessage(`{"scheduler":"x"}`)); err == nil {
		t.Errorf("registered parser accepted an unknown scheduler")
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
			if !strings.HasPrefix(err.Error(), Name+":") {
				t.Fatalf("error without the policy name: %v", err)
			}
			return
		}
		if cfg.validate() != nil {
			t.Fatalf("accepted an invalid config")
		}
		st := newState(cfg, clocktest.New())
		buildPicker(st, []endpointView{{addr: "a", info: DefaultEndpointInfo, ready: true, child: fakeChild{&fakeSubConn{name: "a"}}}})
	})
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
