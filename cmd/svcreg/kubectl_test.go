// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/server"
)

// TestKubectl runs the installed kubectl against a registry with TLS and
// auth on (kubectl sends a token over TLS only), through a kubeconfig from
// `svcreg kubeconfig`: discovery, get, -o yaml, and get -w following a
// change made through svcreg's own API.
func TestKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: this test runs the real kubectl against svcreg")
	}
	flags := tlsFlags(t) // --tls-cert C --tls-key K --peer-tls-ca CA
	boot := auth.NewSecret()
	srv := runRegistry(t, server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DNSAddr: "-",
		Security: server.Security{TLSCert: flags[1], TLSKey: flags[3], BootstrapToken: boot}})
	addr := srv.GRPCAddr()
	t.Setenv("SVCREG_TOKEN", boot)
	t.Setenv("SVCREG_CACERT", flags[5])
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n"
	if out, code := consoleRun(t, addr, svc, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s", out)
	}

	var kc bytes.Buffer
	if err := kubeconfigCmd(context.Background(), []string{"--server", "https://" + srv.HTTPAddr(), "--addr", addr}, &kc); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kc.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "KUBECONFIG="+path, "HOME="+dir, "KUBECACHEDIR="+filepath.Join(dir, "cache"))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"api-resources"}, []string{"endpointslices", "discovery.k8s.io/v1", "services", "svc", "namespaces"}},
		{[]string{"get", "svc,endpointslices", "-A"}, []string{"service/web", "endpointslice.discovery.k8s.io/web-0"}},
		{[]string{"get", "namespaces"}, []string{"default", "shop", "Active"}},
		// Server-side printing: kube-apiserver's columns.
		{[]string{"get", "svc", "-n", "shop", "-o", "wide"}, []string{"CLUSTER-IP", "ClusterIP", "80/TCP", "app=web"}},
		{[]string{"get", "endpointslices", "-n", "shop"}, []string{"ADDRESSTYPE", "IPv4", "<unset>"}},
		{[]string{"get", "svc", "web", "-n", "shop", "-o", "yaml"}, []string{"kind: Service", "clusterIP: 10.96.", "name: web", "namespace: shop"}},
		{[]string{"get", "endpoints", "web", "-n", "shop", "-o", "jsonpath={.metadata.name}"}, []string{"web"}},
	} {
		out := run(tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("kubectl %s: no %q in\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}

	// get -w follows a change: an instance registered through svcreg.
	cmd := exec.Command(kubectl, "get", "endpointslices", "-n", "shop", "-w", "--output-watch-events", "-o", "jsonpath={.type} {.object.metadata.name} {.object.endpoints[*].addresses[0]}{\"\\n\"}")
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	expectLine := func(want string) {
		t.Helper()
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), want) {
				return
			}
		}
		t.Fatalf("kubectl get -w ended before %q: %v", want, lines.Err())
	}
	expectLine("ADDED web-0")
	inst := "apiVersion: svcreg.io/v1\nkind: Instance\nname: web-7\nnamespace: shop\nip: 10.1.2.3\nlabels: {app: web}\n"
	if out, code := consoleRun(t, addr, inst, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s", out)
	}
	expectLine("MODIFIED web-0 10.1.2.3")

	// kubectl apply creates, then patches (its three-way strategic merge);
	// delete deletes. A selectorless service takes its Endpoints.
	manifest := filepath.Join(dir, "legacy.yaml")
	legacy := func(port, ip string) {
		t.Helper()
		doc := "apiVersion: v1\nkind: Service\nmetadata: {name: legacy, namespace: shop}\nspec:\n  ports: [{name: pg, port: " + port + "}]\n---\n" +
			"apiVersion: v1\nkind: Endpoints\nmetadata: {name: legacy, namespace: shop}\nsubsets:\n- addresses: [{ip: " + ip + "}]\n  ports: [{name: pg, port: 5432}]\n"
		if err := os.WriteFile(manifest, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	legacy("5432", "192.0.2.10")
	if out := run("apply", "-f", manifest); !strings.Contains(out, "service/legacy created") || !strings.Contains(out, "endpoints/legacy created") {
		t.Errorf("kubectl apply: %s", out)
	}
	legacy("5433", "192.0.2.11")
	if out := run("apply", "-f", manifest); !strings.Contains(out, "service/legacy configured") {
		t.Errorf("kubectl apply again: %s", out)
	}
	if out := run("get", "svc,endpoints", "legacy", "-n", "shop"); !strings.Contains(out, "5433/TCP") || !strings.Contains(out, "192.0.2.11:5432") {
		t.Errorf("after kubectl apply: %s", out)
	}
	if out := run("delete", "svc", "legacy", "-n", "shop"); !strings.Contains(out, `service "legacy" deleted`) {
		t.Errorf("kubectl delete: %s", out)
	}

	// Without the token, kubectl is refused with 401.
	cmd = exec.Command(kubectl, "get", "svc", "-A", "--token", "not-a-token")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "You must be logged in") {
		t.Errorf("kubectl with a bad token: %v\n%s", err, out)
	}
}
