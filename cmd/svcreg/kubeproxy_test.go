// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kubeProxySetup starts, in a network namespace of the test's own: svcreg,
// two backends on addresses of its loopback, and the real kube-proxy in nftables
// mode reading svcreg's Kubernetes API; a client in the namespace reaches
// the cluster IP and follows an add, a removal and a drain. The registry
// and kube-proxy use their default ports: a new namespace has nothing
// else bound. kube-proxy leaves the conntrack sysctls alone (the zeros),
// some of which the kernel shares between namespaces.
const kubeProxySetup = `
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
ip link set lo up
ip addr add 10.1.0.1/32 dev lo && ip addr add 10.1.0.2/32 dev lo
ip route add 10.96.0.0/16 dev lo src 10.1.0.1
"$SVCREG" serve --dns-addr "" > svcreg.log 2>&1 &
for b in 1 2; do mkdir -p b$b && echo "backend $b" > b$b/index.html; done
python3 -m http.server 8080 --bind 10.1.0.1 --directory b1 > /dev/null 2>&1 &
python3 -m http.server 8080 --bind 10.1.0.2 --directory b2 > /dev/null 2>&1 &
for i in $(seq 100); do curl -sf localhost:7480/readyz > /dev/null && break; sleep 0.1; done
instance() { printf 'apiVersion: svcreg.io/v1\nkind: Instance\nname: web-%s\nnamespace: shop\nip: 10.1.0.%s\nnode: node-1\nlabels: {app: web}\nports: [{name: http, port: 8080}]\n' $1 $1 | "$SVCREG" apply -f - > /dev/null; }
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  clusterIP: 10.96.0.50\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n' | "$SVCREG" apply -f - > /dev/null
instance 1
"$SVCREG" kubeconfig --server http://127.0.0.1:7480 > kubeconfig
"$KUBE_PROXY" --kubeconfig kubeconfig --proxy-mode nftables --hostname-override node-1 --bind-address 10.1.0.1 \
  --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 \
  --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 > kube-proxy.log 2>&1 &
# until answers match: every one of 20 requests (bounded: 300 rounds)
until_answers() {
  for round in $(seq 300); do
    got=$(for i in $(seq 20); do curl -s --max-time 1 http://10.96.0.50/ || echo none; done | sort -u | tr '\n' ' ')
    [ "$got" = "$1" ] && echo "reached: $got" && return 0
    sleep 0.1
  done
  echo "never reached [$1], last [$got]"; cat kube-proxy.log | tail -20; return 1
}
until_answers "backend 1 "
`

// kubeProxyScript follows the setup's first answer through a change of
// each kind.
const kubeProxyScript = kubeProxySetup + `
instance 2
until_answers "backend 1 backend 2 "
"$SVCREG" drain web-1 -n shop > /dev/null
until_answers "backend 2 "
"$SVCREG" delete instance web-2 -n shop > /dev/null
"$SVCREG" undrain web-1 -n shop > /dev/null
until_answers "backend 1 "
curl -s 127.0.0.1:10249/metrics | grep -E '^kubeproxy_network_programming_duration_seconds_(count|sum)'
nft list table ip kube-proxy > /dev/null && echo "kube-proxy's table is there"
`

// runKubeProxy runs script (after kubeProxySetup) as root in a new network
// namespace, with the svcreg and kube-proxy binaries, and returns its
// output; it skips when that cannot be done here.
func runKubeProxy(t testing.TB, script string, env ...string) string {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs kube-proxy in a network namespace of its own (CI runs as root)")
	}
	for _, tool := range []string{"nft", "curl", "python3", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (CI installs it)", tool)
		}
	}
	out, err := exec.Command("go", "tool", "-modfile=../../tools/kube-proxy/go.mod", "-n", "kube-proxy").Output()
	if err != nil {
		t.Fatalf("building kube-proxy: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), "SVCREG="+binary, "KUBE_PROXY="+strings.TrimSpace(string(out))), env...)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the kube-proxy script failed: %v\n%s", err, got)
	}
	return string(got)
}

// TestKubeProxy runs the real kube-proxy (k8s.io/kubernetes' cmd/kube-proxy,
// pinned in tools/kube-proxy, built into Go's build cache) against
// svcreg in a network namespace of the test's own, in nftables mode.
func TestKubeProxy(t *testing.T) {
	t.Parallel()
	got := runKubeProxy(t, kubeProxyScript)
	t.Logf("%s", got)
	m := regexp.MustCompile(`kubeproxy_network_programming_duration_seconds_count\{[^}]*\} (\d+)`).FindStringSubmatch(got)
	if m == nil || m[1] == "0" || !strings.Contains(got, "kube-proxy's table is there") {
		t.Errorf("kube-proxy's own network programming metric (from the EndpointSlices' trigger times) or its nftables table is missing")
	}
}

// kubeProxyLoad registers $CHANGES endpoints of the service at $RATE a
// second (from one process, so the rate is the registry's), lets
// kube-proxy's last sync pass, and prints its latency histogram.
const kubeProxyLoad = kubeProxySetup + `
cat > load.py <<'PY'
import json, os, time, urllib.request
n, rate = int(os.environ["CHANGES"]), float(os.environ["RATE"])
for i in range(n):
    body = json.dumps({"name": f"load-{i}", "ip": f"10.1.{1 + i // 250}.{1 + i % 250}", "labels": {"app": "web"},
                       "ports": [{"name": "http", "port": 8080}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:7480/v1/namespaces/shop/instances", data=body,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    time.sleep(1 / rate)
PY
python3 load.py
sleep 3
curl -s 127.0.0.1:10249/metrics | grep -E '^kubeproxy_network_programming_duration_seconds_(bucket|count)'
`

// BenchmarkKubeProxyProgramming reports kube-proxy's own network
// programming latency (p50 and p99 of its histogram, as Prometheus'
// histogram_quantile reads it) with svcreg as its API server, over 100 and
// 1,000 endpoint changes at 50 a second:
//
//	go test ./cmd/svcreg -run '^$' -bench KubeProxyProgramming -benchtime 1x
func BenchmarkKubeProxyProgramming(b *testing.B) {
	for _, changes := range []int{100, 1000} {
		b.Run(fmt.Sprintf("changes=%d", changes), func(b *testing.B) {
			for b.Loop() {
				out := runKubeProxy(b, kubeProxyLoad, fmt.Sprintf("CHANGES=%d", changes), "RATE=50")
				b.ReportMetric(histogramQuantile(out, 0.5)*1000, "p50-ms")
				b.ReportMetric(histogramQuantile(out, 0.99)*1000, "p99-ms")
			}
		})
	}
}

// histogramQuantile is Prometheus' histogram_quantile over the bucket
// lines of a metrics text: linear within the bucket the rank falls in.
func histogramQuantile(metrics string, q float64) float64 {
	type bucket struct{ le, count float64 }
	var bs []bucket
	for _, m := range regexp.MustCompile(`_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)`).FindAllStringSubmatch(metrics, -1) {
		le, _ := strconv.ParseFloat(m[1], 64) // "+Inf" parses as +Inf
		c, _ := strconv.ParseFloat(m[2], 64)
		bs = append(bs, bucket{le, c})
	}
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].count
	lower, below := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lower
			}
			return lower + (b.le-lower)*(rank-below)/(b.count-below)
		}
		lower, below = b.le, b.count
	}
	return lower
}
