// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/svcreg/svcreg/internal/bench"
	"github.com/svcreg/svcreg/internal/clientauth"
)

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg bench.Config
	fs.StringVar(&cfg.Addr, "addr", "", "registry gRPC address; empty starts one (in this process, or see --own-process)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "the registry's /metrics URL, to report its heap, RSS and CPU (with --addr)")
	token := fs.String("token", "", "bearer token for --addr (default $SVCREG_TOKEN; needs the admin role in namespace bench)")
	caCert := fs.String("cacert", "", "PEM CA of --addr's certificate; turns TLS on (default $SVCREG_CACERT)")
	fs.BoolVar(&cfg.Secure, "secure", false, "run the in-process registry with TLS and tokens")
	compare := fs.Bool("compare-secure", false, "run twice, plaintext then with TLS and a token, and report the ratios")
	fs.IntVar(&cfg.Watchers, "watchers", 100, "watch streams")
	fs.IntVar(&cfg.Conns, "conns", 0, "gRPC connections shared by the watchers (0: one per 512 watchers)")
	fs.IntVar(&cfg.Services, "services", 1, "services")
	fs.IntVar(&cfg.Endpoints, "endpoints", 10, "endpoints (instances) per service")
	fs.IntVar(&cfg.Updates, "updates", 1000, "instance updates in total")
	fs.Float64Var(&cfg.Rate, "rate", 100, "updates per second (0: as fast as possible)")
	fs.IntVar(&cfg.Writers, "writers", 32, "concurrent writers")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	asJSON := fs.Bool("json", false, "print one JSON object")
	var dnsCfg dnsBenchFlags
	dnsCfg.register(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (in-process server included) to this file")
	ownProcess := fs.Bool("own-process", false, "run the registry as `svcreg serve` on a new data dir in a process of its own: report its RSS, CPU per event and restart-to-ready")
	scale := fs.Bool("scale", false, "Kubernetes' scalability thresholds: --services 10000 --endpoints 15 --watchers 10000 --updates 300 --rate 10 --own-process (flags given win)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scale {
		if err := scalePreset(fs); err != nil {
			return err
		}
	}
	if *ownProcess && cfg.Addr == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Spawn = exe
	}
	if dnsCfg.server != "" {
		return dnsCfg.run(ctx, *asJSON)
	}
	if !*asJSON {
		cfg.Log = os.Stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.Addr != "" {
		dial, err := clientauth.Config{Token: *token, CAFile: *caCert}.DialOptions(cfg.Addr)
		if err != nil {
			return err
		}
		cfg.Dial = dial
	}
	if *compare {
		return compareSecure(ctx, cfg, *asJSON)
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	printResult(res)
	return nil
}

// dnsBenchFlags are bench's DNS load (--dns-server) instead of watches.
type dnsBenchFlags struct {
	server, name, qtype string
	edns                uint
	clients             int
	duration            time.Duration
}

func (d *dnsBenchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.server, "dns-server", "", "instead of watches, load a DNS server (host:port) with one question")
	fs.StringVar(&d.name, "dns-name", "", "DNS load: the question's name")
	fs.StringVar(&d.qtype, "dns-type", "A", "DNS load: the question's type")
	fs.UintVar(&d.edns, "dns-edns", 0, "DNS load: EDNS0 UDP size to advertise (0: none, 512-byte answers)")
	fs.IntVar(&d.clients, "dns-clients", 16, "DNS load: concurrent clients")
	fs.DurationVar(&d.duration, "dns-duration", 10*time.Second, "DNS load: how long")
}

func (d *dnsBenchFlags) run(ctx context.Context, asJSON bool) error {
	qtype, ok := dns.StringToType[strings.ToUpper(d.qtype)]
	if !ok || d.name == "" {
		return fmt.Errorf("--dns-server needs --dns-name and a record --dns-type")
	}
	res, err := bench.DNS(ctx, bench.DNSConfig{Server: d.server, Name: d.name, Type: qtype, EDNS: uint16(d.edns),
		Clients: d.clients, Duration: d.duration})
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("%s %s: %s with %d records; %.0f queries/s, p50 %.3f ms, p99 %.3f ms, max %.3f ms, %d lost of %d\n",
		d.name, strings.ToUpper(d.qtype), res.Rcode, res.Answers, res.QPS, res.P50Ms, res.P99Ms, res.MaxMs, res.Errors, res.Queries+res.Errors)
	return nil
}

// scalePreset sets the --scale run's flags that the command line left
// out: 10,000 services of 15 instances (150,000) and 10,000 watchers, at
// 10 updates a second, on a registry of its own.
func scalePreset(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, kv := range [][2]string{{"services", "10000"}, {"endpoints", "15"}, {"watchers", "10000"}, {"updates", "300"}, {"rate", "10"}, {"own-process", "true"}} {
		if !given[kv[0]] {
			if err := fs.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// compareSecure runs the same load on a plaintext and on a TLS-and-token
// registry, one after the other in this process.
func compareSecure(ctx context.Context, cfg bench.Config, asJSON bool) error {
	if cfg.Addr != "" {
		return fmt.Errorf("--compare-secure starts its own registries: leave out --addr")
	}
	cfg.Secure = false
	plain, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.Secure = true
	secure, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]*bench.Result{"plaintext": plain, "tls_and_token": secure})
	}
	fmt.Println("== plaintext, no auth")
	printResult(plain)
	fmt.Println("== TLS and a token")
	printResult(secure)
	fmt.Printf("== TLS and a token / plaintext: writes/s %.2f, write p99 %.2f, propagation p50 %.2f, p99 %.2f\n",
		secure.WritesPerSec/plain.WritesPerSec, secure.WriteP99Ms/plain.WriteP99Ms, secure.P50Ms/plain.P50Ms, secure.P99Ms/plain.P99Ms)
	return nil
}

func printResult(res *bench.Result) {
	fmt.Printf("watchers %d over %d conns, %d updates: %d/%d events delivered, %d watchers dropped\n",
		res.Watchers, res.Conns, res.Updates, res.Events, res.ExpectedEvents, res.WatchersDropped)
	fmt.Printf("propagation (write acked -> event received): p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs)
	fmt.Printf("delivered %.0f events/s, %.1f bytes/event on the wire\n", res.EventsPerSec, res.BytesPerEvent)
	fmt.Printf("writes: %.0f/s, p50 %.2f ms, p99 %.2f ms\n", res.WritesPerSec, res.WriteP50Ms, res.WriteP99Ms)
	fmt.Printf("heap (%s): %d bytes; idle watcher: %.0f bytes\n", res.HeapOf, res.HeapBytes, res.IdleBytesPerWatcher)
	if res.ServerRSSPeakBytes > 0 {
		fmt.Printf("server process: RSS peak %d bytes, CPU %.2f us per delivered event\n", res.ServerRSSPeakBytes, res.ServerCPUUsPerEvent)
	}
	if res.RestartReadyMs > 0 {
		fmt.Printf("restart on its data dir: ready in %.0f ms, then RSS %d bytes (%.0f bytes per instance)\n",
			res.RestartReadyMs, res.RestartRSSBytes, res.RestartBytesPerInst)
	}
}
