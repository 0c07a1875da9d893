// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package bench is `svcreg bench`: a load generator that measures how fast
// endpoint changes reach watchers. It creates services and instances,
// attaches watchers over a number of connections, then updates instances
// at a fixed rate and records, for every watcher and every event, the time
// from the write's acknowledgement to the event's arrival.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/server"
)

// Config is one benchmark run.
type Config struct {
	Addr       string // registry gRPC address; empty starts one (Spawn says where)
	MetricsURL string // the registry's /metrics, to read its heap, RSS and CPU when Addr is set
	// Spawn, without Addr, is a svcreg binary to run the registry with, in
	// a process of its own on a new data dir (its RSS, CPU and restart are
	// measured); empty runs the registry in this process.
	Spawn string
	// Dial carries Addr's credentials (TLS, a token); plaintext without.
	Dial []grpc.DialOption
	// Secure starts the in-process registry with TLS and tokens, and loads
	// it with an admin token of the bench namespace over TLS.
	Secure bool

	Watchers  int     // watch streams
	Conns     int     // gRPC connections the watchers share; 0: one per 512 watchers
	Services  int     // services the watchers and updates spread over
	Endpoints int     // instances (endpoints) per service
	Updates   int     // instance updates in total
	Rate      float64 // updates per second; 0: as fast as the writers go
	Writers   int     // concurrent writers; 0: 32

	Timeout time.Duration // bound on the whole run; 0: 5 minutes
	Log     io.Writer     // progress lines; nil: none
}

// Result is what a run measured. JSON keys are the documented ones.
type Result struct {
	P50Ms               float64 `json:"p50_ms"`
	P90Ms               float64 `json:"p90_ms"`
	P99Ms               float64 `json:"p99_ms"`
	MaxMs               float64 `json:"max_ms"`
	EventsPerSec        float64 `json:"events_per_sec"`
	BytesPerEvent       float64 `json:"bytes_per_event"`
	WriteP50Ms          float64 `json:"write_p50_ms"`
	WriteP99Ms          float64 `json:"write_p99_ms"`
	WritesPerSec        float64 `json:"writes_per_sec"`
	HeapBytes           uint64  `json:"heap_bytes"`
	HeapOf              string  `json:"heap_of"` // "server", or "process" (server and bench clients together)
	IdleBytesPerWatcher float64 `json:"idle_bytes_per_watcher"`
	// The server's own process, from its /metrics (with --metrics-url, or
	// a registry the run started as a process of its own).
	ServerRSSPeakBytes  uint64  `json:"server_rss_peak_bytes,omitempty"`
	ServerCPUUsPerEvent float64 `json:"server_cpu_us_per_event,omitempty"` // server CPU while writing, per delivered event
	// After the run, a registry of its own is restarted on its data dir.
	RestartReadyMs      float64 `json:"restart_ready_ms,omitempty"`
	RestartRSSBytes     uint64  `json:"restart_rss_bytes,omitempty"`
	RestartBytesPerInst float64 `json:"restart_rss_bytes_per_instance,omitempty"`
	Events              int64   `json:"events"`
	ExpectedEvents      int64   `json:"expected_events"`
	WatchersDropped     int64   `json:"watchers_dropped"`
	Watchers            int     `json:"watchers"`
	Conns               int     `json:"conns"`
	Updates             int     `json:"updates"`
}

func (c *Config) setDefaults() error {
	if c.Watchers < 0 || c.Services < 1 || c.Endpoints < 1 || c.Updates < 0 || c.Rate < 0 {
		return errors.New("need --services >= 1, --endpoints >= 1, and non-negative --watchers, --updates and --rate")
	}
	if c.Conns <= 0 {
		c.Conns = max(1, (c.Watchers+511)/512)
	}
	if c.Writers <= 0 {
		c.Writers = 32
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

const namespace = "bench"

// watcher is one stream and what it received after SYNCED.
type watcher struct {
	service int
	revs    []int64 // revision of each event
	times   []int64 // arrival, ns since the run's epoch
	bytes   int64   // gRPC message bytes of those events
	dropped bool
}

// grpcMessagePrefix is the length prefix of every gRPC message (a flag
// byte and a 4-byte length). An uncompressed message on the wire is this
// plus its protobuf encoding; HTTP/2 adds a 9-byte DATA frame header per
// frame, shared by the messages a frame carries.
const grpcMessagePrefix = 5

// Run executes one benchmark.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }

	res := &Result{Watchers: cfg.Watchers, Conns: cfg.Conns, Updates: cfg.Updates}
	reg, err := target(ctx, cfg, res)
	if err != nil {
		return nil, err
	}
	defer reg.stop()
	heap := reg.heap
	conns, err := reg.connect(cfg.Conns)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	client := svcregv1grpc.NewRegistryServiceClient(conns[0])

	logf("creating %d services with %d instances each", cfg.Services, cfg.Endpoints)
	if err := populate(ctx, client, cfg); err != nil {
		return nil, err
	}
	baseHeap, err := heap()
	if err != nil {
		return nil, err
	}

	logf("attaching %d watchers over %d connections", cfg.Watchers, cfg.Conns)
	epoch := time.Now()
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	ws, err := attach(watchCtx, cfg, conns, epoch)
	if err != nil {
		return nil, err
	}
	idleHeap, err := heap()
	if err != nil {
		return nil, err
	}
	if cfg.Watchers > 0 && idleHeap > baseHeap {
		res.IdleBytesPerWatcher = float64(idleHeap-baseHeap) / float64(cfg.Watchers)
	}
	res.ExpectedEvents = ws.expected(cfg)
	server := watchServer(ctx, reg.metrics)

	logf("writing %d updates at %v/s with %d writers", cfg.Updates, cfg.Rate, cfg.Writers)
	acks, writeLat, writeSpan, err := write(ctx, client, cfg, epoch)
	if err != nil {
		return nil, err
	}
	res.WritesPerSec = float64(cfg.Updates) / writeSpan.Seconds()

	// Wait for the events to arrive, a bounded while.
	drainUntil := time.Now().Add(10 * time.Second)
	for ws.received.Load() < res.ExpectedEvents && time.Now().Before(drainUntil) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if res.HeapBytes, err = heap(); err != nil {
		return nil, err
	}
	server.finish(res, ws.received.Load())
	stopWatching()
	ws.wg.Wait()
	ws.summarize(res, acks)
	slices.Sort(writeLat)
	res.WriteP50Ms, res.WriteP99Ms = pct(writeLat, 50), pct(writeLat, 99)
	if reg.process != nil {
		logf("restarting the registry on its data dir")
		if err := measureRestart(ctx, reg.process, res, cfg.Services*cfg.Endpoints); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// registry is the one a run loads.
type registry struct {
	addr    string
	dial    []grpc.DialOption
	heap    func() (uint64, error)
	metrics string         // its /metrics; "" when it is this process, or unknown
	process *serverProcess // when the run started it as a process of its own
	stop    func()
}

// connect opens n connections to the registry.
func (r *registry) connect(n int) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, n)
	for range n {
		conn, err := grpc.NewClient(r.addr, r.dial...)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, conn)
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

// target is the registry to load: cfg.Addr, a process of its own
// (cfg.Spawn), or one started in this process.
func target(ctx context.Context, cfg Config, res *Result) (*registry, error) {
	plaintext := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	switch {
	case cfg.Addr != "":
		res.HeapOf = "server"
		reg := &registry{addr: cfg.Addr, dial: append(plaintext, cfg.Dial...), metrics: cfg.MetricsURL, stop: func() {}}
		reg.heap = func() (uint64, error) { m, err := scrape(ctx, cfg.MetricsURL); return m.heap, err }
		if cfg.MetricsURL == "" {
			res.HeapOf = "unknown"
			reg.heap = func() (uint64, error) { return 0, nil }
		}
		return reg, nil
	case cfg.Spawn != "":
		p, err := startServerProcess(ctx, cfg.Spawn)
		if err != nil {
			return nil, err
		}
		res.HeapOf = "server"
		return &registry{addr: p.grpc, dial: plaintext, metrics: p.metricsURL(), process: p, stop: p.close,
			heap: func() (uint64, error) { m, err := scrape(ctx, p.metricsURL()); return m.heap, err }}, nil
	}
	return inProcess(ctx, cfg, res)
}

// inProcess starts a registry in this process.
func inProcess(ctx context.Context, cfg Config, res *Result) (*registry, error) {
	srvCfg := server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownTimeout: time.Second}
	var secure *secureSetup
	var err error
	if cfg.Secure {
		if secure, err = newSecureSetup(); err != nil {
			return nil, err
		}
		srvCfg.Security = secure.security
	}
	srv, err := server.New(srvCfg)
	if err != nil {
		return nil, err
	}
	srvCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(srvCtx); close(done) }()
	stop := func() {
		cancel()
		<-done
		if secure != nil {
			secure.close()
		}
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := srv.Ready(waitCtx); err != nil {
		stop()
		return nil, err
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if secure != nil {
		if dial, err = secure.dialOptions(waitCtx, srv.GRPCAddr()); err != nil {
			stop()
			return nil, err
		}
	}
	res.HeapOf = "process"
	return &registry{addr: srv.GRPCAddr(), dial: dial, heap: processHeap, stop: stop}, nil
}

// watchers are the run's watch streams.
type watchers struct {
	all      []*watcher
	wg       sync.WaitGroup
	received atomic.Int64
}

// attach opens the watchers, spread over the connections and services,
// and waits until every one is SYNCED.
func attach(ctx context.Context, cfg Config, conns []*grpc.ClientConn, epoch time.Time) (*watchers, error) {
	ws := &watchers{all: make([]*watcher, cfg.Watchers)}
	var synced sync.WaitGroup
	synced.Add(cfg.Watchers)
	for i := range ws.all {
		w := &watcher{service: i % cfg.Services}
		ws.all[i] = w
		conn := conns[i%len(conns)]
		ws.wg.Go(func() { w.run(ctx, svcregv1grpc.NewRegistryServiceClient(conn), epoch, &synced, &ws.received) })
	}
	syncedCh := make(chan struct{})
	go func() { synced.Wait(); close(syncedCh) }()
	select {
	case <-syncedCh:
		return ws, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("watchers did not sync: %w", ctx.Err())
	}
}

// expected is how many events the updates make the watchers receive.
func (ws *watchers) expected(cfg Config) int64 {
	watchersOf := make([]int64, cfg.Services)
	for _, w := range ws.all {
		watchersOf[w.service]++
	}
	var n int64
	for u := 0; u < cfg.Updates; u++ {
		n += watchersOf[u%cfg.Services]
	}
	return n
}

// summarize turns what the watchers received into the result's figures.
func (ws *watchers) summarize(res *Result, acks map[int64]int64) {
	var lat []float64
	var last, bytes int64
	first := int64(math.MaxInt64)
	for _, w := range ws.all {
		if w.dropped {
			res.WatchersDropped++
		}
		bytes += w.bytes
		for i, rev := range w.revs {
			ack, ok := acks[rev]
			if !ok {
				continue
			}
			first = min(first, ack)
			last = max(last, w.times[i])
			lat = append(lat, float64(max(0, w.times[i]-ack))/1e6)
		}
	}
	res.Events = int64(len(lat))
	if len(lat) > 0 && last > first {
		res.EventsPerSec = float64(len(lat)) / (float64(last-first) / 1e9)
	}
	slices.Sort(lat)
	res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs = pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100)
	if received := ws.received.Load(); received > 0 {
		res.BytesPerEvent = float64(bytes) / float64(received)
	}
}

func (w *watcher) run(ctx context.Context, client svcregv1grpc.RegistryServiceClient, epoch time.Time, synced *sync.WaitGroup, received *atomic.Int64) {
	once := sync.OnceFunc(synced.Done)
	defer once()
	st, err := client.WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: namespace, Service: serviceName(w.service)})
	if err != nil {
		w.dropped = ctx.Err() == nil
		return
	}
	live := false
	for {
		ev, err := st.Recv()
		if err != nil {
			w.dropped = ctx.Err() == nil
			return
		}
		switch {
		case ev.GetType() == svcregv1.EventType_EVENT_TYPE_SYNCED:
			live = true
			once()
		case live && ev.GetEndpoint() != nil:
			w.times = append(w.times, int64(time.Since(epoch)))
			w.revs = append(w.revs, ev.GetResourceVersion())
			w.bytes += int64(grpcMessagePrefix + proto.Size(ev))
			received.Add(1)
		}
	}
}

func serviceName(i int) string       { return "svc-" + strconv.Itoa(i) }
func instanceName(svc, i int) string { return fmt.Sprintf("svc-%d-%d", svc, i) }
func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// populate creates the services and their instances (existing ones from a
// previous run are reused).
func populate(ctx context.Context, client svcregv1grpc.RegistryServiceClient, cfg Config) error {
	var firstErr error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for s := 0; s < cfg.Services; s++ {
		_, err := client.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{
			Name: serviceName(s), Namespace: namespace, Selector: map[string]string{"svc": serviceName(s)},
			Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}}}})
		if err != nil && !isAlreadyExists(err) {
			return err
		}
	}
	jobs := make(chan [2]int)
	var wg sync.WaitGroup
	for w := 0; w < cfg.Writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				n := j[0]*cfg.Endpoints + j[1]
				_, err := client.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
					Name: instanceName(j[0], j[1]), Namespace: namespace,
					Ip:     fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255),
					Labels: map[string]string{"svc": serviceName(j[0])},
					Ports:  []*svcregv1.InstancePort{{Name: "grpc", Port: 8443}}}})
				if err != nil && !isAlreadyExists(err) {
					fail(err)
				}
			}
		}()
	}
	for s := 0; s < cfg.Services; s++ {
		for i := 0; i < cfg.Endpoints; i++ {
			jobs <- [2]int{s, i}
		}
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

func isAlreadyExists(err error) bool { return strings.Contains(err.Error(), "already exists") }

// write performs cfg.Updates weight changes, paced at cfg.Rate, spread
// round-robin over the services. It returns the acknowledgement time of
// each revision (ns since epoch) and every write's latency in ms.
func write(ctx context.Context, client svcregv1grpc.RegistryServiceClient, cfg Config, epoch time.Time) (map[int64]int64, []float64, time.Duration, error) {
	type ack struct {
		rev, at int64
		lat     float64
	}
	results := make([][]ack, cfg.Writers)
	var next atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < cfg.Writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				u := int(next.Add(1) - 1)
				if u >= cfg.Updates || ctx.Err() != nil {
					return
				}
				if cfg.Rate > 0 {
					due := start.Add(time.Duration(float64(u) / cfg.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				svc := u % cfg.Services
				inst := (u / cfg.Services) % cfg.Endpoints
				// A weight no earlier update set (instances start at 1), so
				// every update is a change even when writes reorder.
				weight := uint32(2 + u%65534)
				t0 := time.Now()
				resp, err := client.UpdateInstance(ctx, &svcregv1.UpdateInstanceRequest{
					Instance:   &svcregv1.Instance{Namespace: namespace, Name: instanceName(svc, inst), Weight: proto.Uint32(weight)},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"weight"}}})
				t1 := time.Now()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				results[w] = append(results[w], ack{rev: resp.GetInstance().GetResourceVersion(), at: int64(t1.Sub(epoch)), lat: float64(t1.Sub(t0)) / 1e6})
			}
		}(w)
	}
	wg.Wait()
	span := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, nil, 0, err
	}
	acks := map[int64]int64{}
	var lat []float64
	for _, rs := range results {
		for _, a := range rs {
			acks[a.rev] = a.at
			lat = append(lat, a.lat)
		}
	}
	return acks, lat, span, nil
}

func processHeap() (uint64, error) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, nil
}

// parseSample reads a Prometheus sample value as a count of bytes: the
// text format writes floats (5.88996e+06), never only integers.
func parseSample(v string) (uint64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, err
	}
	if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("sample %q is not a byte count", v)
	}
	return uint64(f), nil
}

// serverMetrics is what a run reads from a server's /metrics.
type serverMetrics struct {
	heap, rss  uint64
	cpuSeconds float64
}

// scrape reads the server's heap, RSS and CPU time from its /metrics
// (the Go client's runtime and process collectors).
func scrape(ctx context.Context, url string) (serverMetrics, error) {
	var m serverMetrics
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return m, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, _ := strings.Cut(sc.Text(), " ")
		switch name {
		case "go_memstats_heap_alloc_bytes":
			m.heap, err = parseSample(v)
		case "process_resident_memory_bytes":
			m.rss, err = parseSample(v)
		case "process_cpu_seconds_total":
			m.cpuSeconds, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
		default:
			continue
		}
		if err != nil {
			return m, fmt.Errorf("%s: %s: %w", url, name, err)
		}
		found++
	}
	if found == 0 {
		return m, fmt.Errorf("%s: no go_memstats_heap_alloc_bytes", url)
	}
	return m, nil
}
