// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestApplyPodReadinessProbe: a Kubernetes Pod applied with `svcreg
// apply` behaves as it would in Kubernetes: its pod template's
// readinessProbe decides whether its address is among the service's
// ready endpoints, with nobody touching the registry.
func TestApplyPodReadinessProbe(t *testing.T) {
	t.Parallel()
	var code atomic.Int32
	code.Store(http.StatusInternalServerError)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Header.Get("X-Probe") != "svcreg" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(code.Load()))
	}))
	defer backend.Close()
	_, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	addr, clock := startConsoleRegistry(t)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  containers:
  - name: web
    ports: [{name: http, containerPort: %s}]
    readinessProbe:
      httpGet: {path: /healthz, port: http, httpHeaders: [{name: X-Probe, value: svcreg}]}
      periodSeconds: 1
      failureThreshold: 1
status: {podIP: 127.0.0.1}
`, port)
	if out, c := consoleRun(t, addr, manifest, "apply", "-f", "-"); c != 0 {
		t.Fatalf("apply: exit %d\n%s", c, out)
	}
	readyCount := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // a bound, not a wait
		for {
			clock.Advance(time.Second) // the next period's check
			out, _ := consoleRun(t, addr, "", "get", "endpoints", "web", "-n", "shop")
			if strings.Contains(out, " "+want+"\n") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the endpoints never showed %s ready:\n%s", want, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	readyCount("0/1") // the probe fails: not ready
	code.Store(http.StatusOK)
	readyCount("1/1")
	code.Store(http.StatusServiceUnavailable)
	readyCount("0/1")
}
