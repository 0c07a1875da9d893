// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// serverProcess is a registry in a process of its own (`svcreg serve` on a
// data dir), as an operator runs one: its memory and CPU are its own, read
// from its /metrics as for --addr, and a restart on the same data dir can
// be timed.
type serverProcess struct {
	binary  string
	dataDir string
	cmd     *exec.Cmd
	exited  chan struct{}
	grpc    string
	http    string
}

// startServerProcess starts binary's `serve` on a new data dir, on
// loopback ports of its choosing, and waits until it is ready.
func startServerProcess(ctx context.Context, binary string) (*serverProcess, error) {
	dir, err := os.MkdirTemp("", "svcreg-bench-")
	if err != nil {
		return nil, err
	}
	p := &serverProcess{binary: binary, dataDir: dir}
	if _, err := p.start(ctx, "127.0.0.1:0", "127.0.0.1:0"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// start runs the server and returns how long it took from the exec to a
// 200 from /readyz (a restart replays the data dir before it is ready).
func (p *serverProcess) start(ctx context.Context, grpcAddr, httpAddr string) (time.Duration, error) {
	begin := time.Now()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	// Loopback only, so the registry may run without tokens; DNS is not
	// part of this load.
	p.cmd = exec.Command(p.binary, "serve", "--node-id", "bench", "--data-dir", p.dataDir, "--auth", "off",
		"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--dns-addr", "-")
	p.cmd.Stderr = w
	if err := p.cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return 0, err
	}
	w.Close()
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.exited) }()
	serving := make(chan string, 1)
	go readServingLine(r, serving)
	select {
	case line := <-serving:
		p.grpc, p.http = logField(line, "grpc"), logField(line, "http")
	case <-p.exited:
		return 0, errors.New("the registry process exited before serving")
	case <-ctx.Done():
		p.kill()
		return 0, ctx.Err()
	}
	for {
		if resp, err := http.Get("http://" + p.http + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(begin), nil
			}
		}
		select {
		case <-p.exited:
			return 0, errors.New("the registry process exited before it was ready")
		case <-ctx.Done():
			p.kill()
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// readServingLine sends the "svcreg serving" log line (it names the ports
// bound) and reads the rest of the log away.
func readServingLine(r io.ReadCloser, serving chan<- string) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `msg="svcreg serving"`) {
			serving <- sc.Text()
			break
		}
	}
	io.Copy(io.Discard, r)
}

// logField is key's value in a log line of key=value pairs.
func logField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func (p *serverProcess) metricsURL() string { return "http://" + p.http + "/metrics" }

// restart stops the server as a supervisor would (SIGTERM) and starts it
// again on the same data dir and ports; it returns the time to ready.
func (p *serverProcess) restart(ctx context.Context) (time.Duration, error) {
	if err := p.stop(); err != nil {
		return 0, err
	}
	return p.start(ctx, p.grpc, p.http)
}

// stop ends the server: SIGTERM, then SIGKILL after 30 seconds.
func (p *serverProcess) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("the registry process did not stop within 30s of SIGTERM")
	}
}

func (p *serverProcess) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// close stops the server and removes its data dir.
func (p *serverProcess) close() {
	p.stop()
	os.RemoveAll(p.dataDir)
}
