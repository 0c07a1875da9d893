// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package proxy

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkProxy measures both data planes against the direct path in one
// run, in a network namespace of its own (docs/benchmarks.md):
//
//   - streams=N: bulk throughput, N connections each writing 256 KiB
//     chunks to a backend that discards them (B/s is the sum);
//   - connect: 8 dialers each dialling, echoing one byte and closing; the
//     rate is 1/(ns/op), p50/p99 are of one dial+echo+close;
//   - direct+conntrack: the direct path once nf_tables NAT (and with it
//     connection tracking) is on in the namespace;
//   - update: a backend added or removed in the registry, until the data
//     plane has it (new connections pick by it; the kernel's rules say it),
//     the write's own commit included.
func BenchmarkProxy(b *testing.B) {
	if !benchInsideNetns(b) {
		return
	}
	widenPortRange(b)
	sink := startSink(b, "127.0.40.1")
	echo := startEcho(b, "echo", "127.0.40.2", false)
	benchPath(b, "direct", sink.addr(), echo.addr(), nil)
	for i, mode := range []string{ModeUserspace, ModeNFTables} {
		// The userspace agent's measurements come first: the kernel's
		// connection tracking, on once the nftables table is, costs every
		// path that follows.
		e := startEnv(b, Config{Mode: mode})
		sinkIP, echoIP := fmt.Sprintf("10.96.4%d.1", i+1), fmt.Sprintf("10.96.4%d.2", i+1)
		e.createService(echoService("sink", sinkIP, "rr", false))
		e.createService(echoService("echo", echoIP, "rr", false))
		e.register(&echoBackend{name: "sink-1", ip: sink.ip, port: sink.port}, "sink", sinkIP)
		e.register(&echoBackend{name: "echo-1", ip: echo.ip, port: echo.port}, "echo", echoIP)
		benchPath(b, mode, sinkIP+":80", echoIP+":80", e)
	}
	// The direct path again, now that the kernel tracks connections: what
	// of nftables mode's cost is conntrack rather than the rules.
	benchPath(b, "direct+conntrack", sink.addr(), echo.addr(), nil)
}

func benchPath(b *testing.B, name, sinkAddr, echoAddr string, e *env) {
	for _, streams := range []int{1, 4} {
		b.Run(fmt.Sprintf("path=%s/streams=%d", name, streams), func(b *testing.B) { benchStreams(b, sinkAddr, streams) })
	}
	b.Run("path="+name+"/connect", func(b *testing.B) { benchConnect(b, echoAddr, 8) })
	if e != nil {
		b.Run("path="+name+"/update", func(b *testing.B) { benchUpdate(b, e, echoAddr) })
	}
}

func benchStreams(b *testing.B, addr string, streams int) {
	const chunk = 256 << 10
	b.SetBytes(chunk)
	conns := make([]*net.TCPConn, streams)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c.(*net.TCPConn)
	}
	buf := make([]byte, chunk)
	errs := make(chan error, streams)
	b.ResetTimer()
	for i, c := range conns {
		n := b.N / streams
		if i == 0 {
			n += b.N % streams
		}
		go func() {
			defer c.Close()
			for range n {
				if _, err := c.Write(buf); err != nil {
					errs <- err
					return
				}
			}
			// The sink closes once it has read everything: the bytes
			// counted are the bytes that arrived.
			c.CloseWrite()
			_, err := io.Copy(io.Discard, c)
			errs <- err
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}

func benchConnect(b *testing.B, addr string, dialers int) {
	var (
		mu    sync.Mutex
		took  []time.Duration
		wg    sync.WaitGroup
		errs  = make(chan error, dialers)
		next  = make(chan struct{}, b.N)
		start = time.Now()
	)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	b.ResetTimer()
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			one := []byte{'x'}
			for range next {
				t0 := time.Now()
				if err := echoOnce(addr, one); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			took = append(took, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
	reportPercentiles(b, took)
}

func echoOnce(addr string, data []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(data); err != nil {
		return err
	}
	_, err = io.ReadFull(c, make([]byte, len(data)))
	return err
}

// benchUpdate adds a backend and removes it again, one change an op.
func benchUpdate(b *testing.B, e *env, frontAddr string) {
	took := make([]time.Duration, 0, b.N)
	extra := &echoBackend{name: "echo-extra", ip: "127.0.40.9", port: 9}
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if i%2 == 0 {
			e.register(extra, "echo", strings.TrimSuffix(frontAddr, ":80"))
		} else {
			e.deregister(extra, strings.TrimSuffix(frontAddr, ":80"))
		}
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	if b.N%2 == 1 {
		e.deregister(extra, strings.TrimSuffix(frontAddr, ":80"))
	}
	reportPercentiles(b, took)
}

func reportPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))].Microseconds()) }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// sinkBackend reads and discards until the client's EOF, then closes.
type sinkBackend struct {
	ip   string
	port int
}

func (s *sinkBackend) addr() string { return net.JoinHostPort(s.ip, strconv.Itoa(s.port)) }

func startSink(b testing.TB, ip string) *sinkBackend {
	lis, err := net.Listen("tcp", ip+":0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256<<10)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return &sinkBackend{ip: ip, port: lis.Addr().(*net.TCPAddr).Port}
}

// widenPortRange gives the namespace's clients every ephemeral port and
// lets a dial reuse a port in TIME_WAIT: the connect benchmark opens and
// closes tens of thousands of connections a second.
func widenPortRange(b testing.TB) {
	for file, value := range map[string]string{
		"/proc/sys/net/ipv4/ip_local_port_range": "1024 65535",
		"/proc/sys/net/ipv4/tcp_tw_reuse":        "1",
	} {
		if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// benchInsideNetns is insideNetns for a benchmark: it runs the benchmark
// again in a network namespace of its own with the same -bench and
// -benchtime, and relays the measurements.
func benchInsideNetns(b *testing.B) bool {
	if os.Getenv("SVCREG_TEST_NETNS") == b.Name() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			b.Fatalf("ip link set lo up: %v\n%s", err, out)
		}
		return true
	}
	if os.Geteuid() != 0 {
		b.Skip("needs root: runs in a network namespace of its own, adds cluster IPs and programs nf_tables")
	}
	args := []string{"--net", "--", os.Args[0], "-test.run", "^$", "-test.count", flag.Lookup("test.count").Value.String(),
		"-test.bench", flag.Lookup("test.bench").Value.String(),
		"-test.benchtime", flag.Lookup("test.benchtime").Value.String()}
	if flag.Lookup("test.benchmem").Value.String() == "true" {
		args = append(args, "-test.benchmem")
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "SVCREG_TEST_NETNS="+b.Name())
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var tail []string
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, b.Name()+"/") || strings.Contains(line, "_test.go:") {
			os.Stdout.WriteString(line + "\n")
		}
		tail = append(tail[max(0, len(tail)-39):], line)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("in its network namespace: %v\n%s", err, strings.Join(tail, "\n"))
	}
	b.Skip("measured in a network namespace of its own: the lines above")
	return false
}
