// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// The checks, as the kubelet runs them (pkg/probe): a TCP connect; an HTTP
// GET whose status is 200-399, redirects followed, HTTPS unverified; a
// grpc.health.v1 Check answering SERVING. Each returns the outcome and,
// for a failure, a short reason recorded in the instance's status.

func checkTCP(ctx context.Context, dial dialFunc, addr string) (bool, string) {
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return false, reasonOf(ctx, err)
	}
	conn.Close()
	return true, "TCP connect succeeded"
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// maxRedirects is the kubelet's: past it the probe fails.
const maxRedirects = 10

func checkHTTP(ctx context.Context, dial dialFunc, addr string, h *svcregv1.HTTPGetProbe) (bool, string) {
	scheme := strings.ToLower(h.GetScheme())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+h.GetPath(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "svcreg-probe/1")
	for _, hdr := range h.GetHttpHeaders() {
		if strings.EqualFold(hdr.GetName(), "Host") {
			req.Host = hdr.GetValue()
			continue
		}
		req.Header.Add(hdr.GetName(), hdr.GetValue())
	}
	client := &http.Client{
		Transport: &http.Transport{
			DialContext:       dial,
			DisableKeepAlives: true, // one connection per check, as the kubelet
			// The kubelet does not verify a probe's certificate: the
			// probe asks whether the process answers, not who it is.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, reasonOf(ctx, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return false, fmt.Sprintf("HTTP %d", resp.StatusCode)
}

func checkGRPC(ctx context.Context, dial dialFunc, addr, service string) (bool, string) {
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dial(ctx, "tcp", a) }),
		grpc.WithUserAgent("svcreg-probe/1"))
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(false))
	if err != nil {
		return false, reasonOf(ctx, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return false, "gRPC health " + s.String()
	}
	return true, "gRPC health SERVING"
}

// reasonOf words a check's error briefly: a timeout as such.
func reasonOf(ctx context.Context, err error) string {
	if cause := context.Cause(ctx); errors.Is(cause, errTimedOut) {
		return cause.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i < 80 {
		msg = msg[i+2:] // "connection refused", not the whole dial path
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
