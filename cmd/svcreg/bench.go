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
	fs.StringVar(&cfg.Addr, "addr", "", "registry gRPC address; empty starts one in this process")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "the registry's /metrics URL, to report its heap (with --addr)")
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
	dnsServer := fs.String("dns-server", "", "instead of watches, load a DNS server (host:port) with one question")
	dnsName := fs.String("dns-name", "", "DNS load: the question's name")
	dnsType := fs.String("dns-type", "A", "DNS load: the question's type")
	dnsEDNS := fs.Uint("dns-edns", 0, "DNS load: EDNS0 UDP size to advertise (0: none, 512-byte answers)")
	dnsClients := fs.Int("dns-clients", 16, "DNS load: concurrent clients")
	dnsDuration := fs.Duration("dns-duration", 10*time.Second, "DNS load: how long")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (in-process server included) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dnsServer != "" {
		qtype, ok := dns.StringToType[strings.ToUpper(*dnsType)]
		if !ok || *dnsName == "" {
			return fmt.Errorf("--dns-server needs --dns-name and a record --dns-type")
		}
		res, err := bench.DNS(ctx, bench.DNSConfig{Server: *dnsServer, Name: *dnsName, Type: qtype, EDNS: uint16(*dnsEDNS),
			Clients: *dnsClients, Duration: *dnsDuration})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(os.Stdout).Encode(res)
		}
		fmt.Printf("%s %s: %s with %d records; %.0f queries/s, p50 %.3f ms, p99 %.3f ms, max %.3f ms, %d lost of %d\n",
			*dnsName, strings.ToUpper(*dnsType), res.Rcode, res.Answers, res.QPS, res.P50Ms, res.P99Ms, res.MaxMs, res.Errors, res.Queries+res.Errors)
		return nil
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
}
