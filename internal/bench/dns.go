// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DNSConfig is one DNS load run: closed-loop clients, each with its own
// UDP socket, asking one question as fast as answers come back.
type DNSConfig struct {
	Server   string        // host:port
	Name     string        // the question's name
	Type     uint16        // the question's type
	Clients  int           // concurrent clients; default 16
	Duration time.Duration // default 10s
	EDNS     uint16        // advertised UDP size; 0: no EDNS0 (512-byte answers)
}

// DNSResult is what a DNS run measured.
type DNSResult struct {
	QPS     float64 `json:"qps"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	Queries int64   `json:"queries"`
	Errors  int64   `json:"errors"`
	Answers int     `json:"answers"` // records in one answer
	Rcode   string  `json:"rcode"`
}

// DNS runs a DNS load.
func DNS(ctx context.Context, cfg DNSConfig) (*DNSResult, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 16
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(cfg.Name), cfg.Type)
	q.RecursionDesired = false
	if cfg.EDNS > 0 {
		q.SetEdns0(cfg.EDNS, false)
	}
	first, _, err := (&dns.Client{Net: "udp"}).Exchange(q, cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("first query: %w", err)
	}
	res := &DNSResult{Answers: len(first.Answer), Rcode: dns.RcodeToString[first.Rcode]}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var errs atomic.Int64
	lats := make([][]float64, cfg.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < cfg.Clients; c++ {
		udp, err := net.Dial("udp", cfg.Server)
		if err != nil {
			return nil, err
		}
		conn := &dns.Conn{Conn: udp, UDPSize: 65535}
		wg.Go(func() {
			defer conn.Close()
			for id := uint16(c) << 10; ctx.Err() == nil; id++ {
				m := q.Copy()
				m.Id = id
				t0 := time.Now()
				conn.SetDeadline(t0.Add(time.Second))
				if err := conn.WriteMsg(m); err != nil {
					errs.Add(1)
					continue
				}
				if _, err := conn.ReadMsg(); err != nil {
					errs.Add(1) // a lost datagram: counted, the loop goes on
					continue
				}
				lats[c] = append(lats[c], float64(time.Since(t0))/1e6)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []float64
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no answers")
	}
	slices.Sort(all)
	res.Queries, res.Errors = int64(len(all)), errs.Load()
	res.QPS = float64(len(all)) / elapsed.Seconds()
	res.P50Ms, res.P99Ms, res.MaxMs = pct(all, 50), pct(all, 99), pct(all, 100)
	return res, nil
}
