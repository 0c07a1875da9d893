package balancer

import (
	"encoding/json"
	"fmt"
	"testing"
)

func connsWith(t *testing.T, js string, backends ...ConnBackend) *Conns {
	t.Helper()
	cfg, err := ParseConfig(json.RawMessage(js))
	if err != nil {
		t.Fatal(err)
	}
	c := NewConns(cfg)
	t.Cleanup(c.Close)
	c.Update(nil, backends)
	return c
}

func backends(n int) []ConnBackend {
	var out []ConnBackend
	for i := range n {
		out = append(out, ConnBackend{Addr: fmt.Sprintf("10.0.0.%d:80", i+1), Info: EndpointInfo{Weight: 1}})
	}
	return out
}

// TestConnsSchedulers: connection-level picks follow the scheduler: rr
// spreads evenly, lc avoids the backends holding open connections, sh
// keeps a client on one backend, and a terminating backend gets
// connections only when nothing else can.
func TestConnsSchedulers(t *testing.T) {
	t.Run("rr", func(t *testing.T) {
		c := connsWith(t, `{"scheduler":"rr"}`, backends(3)...)
		got := map[string]int{}
		for range 300 {
			addr, done, err := c.Pick("10.1.0.1:5000")
			if err != nil {
				t.Fatal(err)
			}
			got[addr]++
			done()
		}
		for addr, n := range got {
			if n != 100 {
				t.Errorf("%s got %d of 300 connections, want 100", addr, n)
			}
		}
	})
	t.Run("lc counts open connections", func(t *testing.T) {
		c := connsWith(t, `{"scheduler":"lc"}`, backends(3)...)
		held, _, _ := c.Pick("a")
		for range 20 { // two backends take the short ones; the held one gets none
			addr, done, _ := c.Pick("b")
			if addr == held {
				t.Fatalf("lc picked %s, which holds an open connection, while others hold none", held)
			}
			done()
		}
	})
	t.Run("sh keys on the client", func(t *testing.T) {
		c := connsWith(t, `{"scheduler":"sh"}`, backends(5)...)
		first, done, _ := c.Pick("192.0.2.7")
		done()
		for range 10 {
			if addr, done, _ := c.Pick("192.0.2.7"); addr != first {
				t.Fatalf("sh moved the client from %s to %s", first, addr)
			} else {
				done()
			}
		}
	})
	t.Run("terminating last", func(t *testing.T) {
		bs := backends(2)
		bs[0].Info.Terminating = true
		c := connsWith(t, `{"scheduler":"rr"}`, bs...)
		for range 10 {
			if addr, done, _ := c.Pick("x"); addr != bs[1].Addr {
				t.Fatalf("a terminating backend got a connection: %s", addr)
			} else {
				done()
			}
		}
		c.Update(nil, bs[:1])
		if addr, _, err := c.Pick("x"); err != nil || addr != bs[0].Addr {
			t.Errorf("with only a terminating backend: %q, %v; want it used", addr, err)
		}
		c.Update(nil, nil)
		if _, _, err := c.Pick("x"); err != ErrNoBackend {
			t.Errorf("no backends: %v, want ErrNoBackend", err)
		}
	})
}
