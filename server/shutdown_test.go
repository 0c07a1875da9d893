// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestServeReturnsWhenShutdownSticks: whatever hangs during the shutdown,
// Serve returns within the grace (ShutdownTimeout plus the slack for
// Raft), so the process exits and a supervisor can restart it. Each way
// Serve begins to stop is driven: the context (SIGTERM), a listener that
// fails.
func TestServeReturnsWhenShutdownSticks(t *testing.T) {
	release := make(chan struct{})
	stuck := func() { <-release }
	testHookShutdown.Store(&stuck)
	oldSlack := shutdownSlack
	shutdownSlack = 200 * time.Millisecond
	t.Cleanup(func() {
		testHookShutdown.Store(nil)
		close(release) // the stuck shutdowns finish now
		shutdownSlack = oldSlack
	})
	tests := []struct {
		name    string
		trigger func(s *Server, cancel context.CancelFunc)
	}{
		{"the context ends (SIGTERM)", func(_ *Server, cancel context.CancelFunc) { cancel() }},
		{"a listener fails", func(s *Server, _ context.CancelFunc) { s.grpcLis.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-", ShutdownTimeout: 100 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx) }()
			waitCaughtUp(t, srv)
			tt.trigger(srv, cancel)
			select {
			case err := <-done:
				if !errors.Is(err, ErrStuckShutdown) {
					t.Errorf("Serve = %v, want %v", err, ErrStuckShutdown)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Serve did not return while its shutdown was stuck")
			}
		})
	}
}

// TestClose: Close releases what New bound when Serve never ran (the
// ports and the data dir can be taken again), stops a Serve in progress
// as its context would, and a Serve after Close refuses to start.
func TestClose(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	cfg := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0", DataDir: dir, ShutdownTimeout: time.Second, Logger: quiet}

	unserved, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{unserved.GRPCAddr(), unserved.HTTPAddr(), unserved.DNSAddr()}
	if err := unserved.Close(); err != nil {
		t.Fatalf("Close before Serve: %v", err)
	}
	if err := unserved.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if err := unserved.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close = %v, want %v", err, ErrServerClosed)
	}

	again := cfg
	again.GRPCAddr, again.HTTPAddr, again.DNSAddr = addrs[0], addrs[1], addrs[2]
	srv, err := New(again) // the same ports and data dir: all released
	if err != nil {
		t.Fatalf("New on what a closed server held: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close while serving: %v", err)
	}
	// Close waited for the shutdown: the ports are free the moment it
	// returns (Serve's own return reaches the channel a moment later).
	for _, addr := range []string{srv.GRPCAddr(), srv.HTTPAddr()} {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("Close returned while %s was still held: %v", addr, err)
		}
		lis.Close()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Close = %v", err)
		}
	case <-time.After(10 * time.Second): // a bound, not a wait
		t.Fatal("Serve did not return after Close")
	}
}
