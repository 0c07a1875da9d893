// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"sync"
	"time"
)

// serverWatch follows a server's process through its /metrics while the
// run writes: the peak RSS (sampled every 250 ms) and the CPU time spent.
type serverWatch struct {
	url   string
	ctx   context.Context
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	peak  uint64
	cpu0  float64
	first bool // cpu0 was read
}

// watchServer starts following the server at url; a nil watch (no URL)
// measures nothing.
func watchServer(ctx context.Context, url string) *serverWatch {
	if url == "" {
		return nil
	}
	w := &serverWatch{url: url, ctx: ctx, stop: make(chan struct{}), done: make(chan struct{})}
	if m, err := scrape(ctx, url); err == nil {
		w.peak, w.cpu0, w.first = m.rss, m.cpuSeconds, true
	}
	go w.sample()
	return w
}

func (w *serverWatch) sample() {
	defer close(w.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		if m, err := scrape(w.ctx, w.url); err == nil {
			w.mu.Lock()
			w.peak = max(w.peak, m.rss)
			w.mu.Unlock()
		}
	}
}

// finish stops the sampling and records the peak RSS and the server's CPU
// time per delivered event.
func (w *serverWatch) finish(res *Result, delivered int64) {
	if w == nil {
		return
	}
	close(w.stop)
	<-w.done
	m, err := scrape(w.ctx, w.url)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.peak = max(w.peak, m.rss)
		if w.first && delivered > 0 {
			res.ServerCPUUsPerEvent = (m.cpuSeconds - w.cpu0) * 1e6 / float64(delivered)
		}
	}
	res.ServerRSSPeakBytes = w.peak
}

// measureRestart restarts a registry of its own on its data dir, with no
// watcher, and records the time to ready and its RSS then.
func measureRestart(ctx context.Context, p *serverProcess, res *Result, instances int) error {
	took, err := p.restart(ctx)
	if err != nil {
		return err
	}
	res.RestartReadyMs = float64(took) / 1e6
	m, err := scrape(ctx, p.metricsURL())
	if err != nil {
		return err
	}
	res.RestartRSSBytes = m.rss
	if instances > 0 {
		res.RestartBytesPerInst = float64(m.rss) / float64(instances)
	}
	return nil
}
