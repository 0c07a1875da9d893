// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package labels

import (
	"strings"
	"testing"
)

func TestParseAndMatch(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front", "env": "prod", "n": "5", "empty": ""}
	tests := []struct {
		sel       string
		canonical string
		match     bool
	}{
		{"", "", true},
		{"app=web", "app=web", true},
		{"app==web", "app==web", true},
		{"app = web", "app=web", true},
		{"app=db", "app=db", false},
		{"app!=db", "app!=db", true},
		{"missing!=x", "missing!=x", true},
		{"env in (prod,staging)", "env in (prod,staging)", true},
		{"env in (staging, prod, prod)", "env in (prod,staging)", true},
		{"env notin (prod)", "env notin (prod)", false},
		{"missing notin (prod)", "missing notin (prod)", true},
		{"tier", "tier", true},
		{"!tier", "!tier", false},
		{"!canary", "!canary", true},
		{"empty=", "empty=", true},
		{"n>3", "n>3", true},
		{"n<3", "n<3", false},
		{"app>3", "app>3", false},
		{"tier,app=web,env in (prod),!canary", "app=web,!canary,env in (prod),tier", true},
		{"example.com/role=x", "example.com/role=x", false},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			sel, err := Parse(tt.sel)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.sel, err)
			}
			if got := sel.String(); got != tt.canonical {
				t.Errorf("String() = %q, want %q", got, tt.canonical)
			}
			if got := sel.Matches(labels); got != tt.match {
				t.Errorf("Matches = %v, want %v", got, tt.match)
			}
			again, err := Parse(sel.String())
			if err != nil || again.String() != sel.String() {
				t.Errorf("round trip of %q: %v, %q", sel.String(), err, again.String())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		sel, wantErr string
	}{
		{"app=", ""}, // empty value is valid
		{",", "expected a label key"},
		{"app=web,", "trailing ','"},
		{"app=we b", "expected ',' or the end"},
		{"app=-bad-", "invalid label value"},
		{"app=" + strings.Repeat("x", 64), "invalid label value"},
		{"-app=x", "invalid label key"},
		{"a/b/c=x", "invalid label key"},
		{"env in prod", "expected '('"},
		{"env in ()", "expected a value"},
		{"env in (,a)", "expected a value"},
		{"env in (a b)", "expected ',' or ')'"},
		{"env in (a", "expected ',' or ')'"},
		{"n>x", "invalid integer"},
		{"n>", "expected an integer"},
		{"app web", "expected an operator"},
		{"!app=web", "expected ',' or the end"},
		{"=web", "expected a label key"},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			_, err := Parse(tt.sel)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Parse(%q): unexpected error %v", tt.sel, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Parse(%q) = %v, want error containing %q", tt.sel, err, tt.wantErr)
			}
		})
	}
}

func TestMatchesMap(t *testing.T) {
	tests := []struct {
		name             string
		selector, labels map[string]string
		want             bool
	}{
		{"empty selector selects nothing", nil, map[string]string{"a": "b"}, false},
		{"subset", map[string]string{"a": "b"}, map[string]string{"a": "b", "c": "d"}, true},
		{"value differs", map[string]string{"a": "b"}, map[string]string{"a": "x"}, false},
		{"key missing", map[string]string{"a": "b", "c": "d"}, map[string]string{"a": "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchesMap(tt.selector, tt.labels); got != tt.want {
				t.Errorf("MatchesMap = %v, want %v", got, tt.want)
			}
			if len(tt.selector) > 0 && SelectorFromMap(tt.selector).Matches(tt.labels) != tt.want {
				t.Errorf("SelectorFromMap disagrees with MatchesMap")
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// renders to a canonical string that parses to the same selector.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a=b,c!=d,e in (x,y),!f", "n>3", "x notin (a,b)", "k", "a==b", "a in (", "!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(sel.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", sel.String(), s, err)
		}
		if again.String() != sel.String() {
			t.Fatalf("canonical form is not stable: %q -> %q", sel.String(), again.String())
		}
	})
}
