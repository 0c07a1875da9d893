package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
