// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock is a shell block of the README (or of a page in docs/)
// marked to run, with the text its output must contain.
type readmeBlock struct {
	file   string // relative to the repository's root
	line   int
	expect string
	script string
}

// docBlocks are file's ```sh blocks preceded by a <!-- MARKER: EXPECT -->
// marker.
func docBlocks(t *testing.T, file, marker string) []readmeBlock {
	readmeMarker := regexp.MustCompile(`^<!-- ` + marker + `:(.*)-->$`)
	b, err := os.ReadFile("../../" + file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var blocks []readmeBlock
	for i := 0; i+1 < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if lines[i+1] != "```sh" {
			t.Fatalf("%s:%d: a %s marker not followed by a ```sh block", file, i+1, marker)
		}
		var script []string
		j := i + 2
		for ; j < len(lines) && lines[j] != "```"; j++ {
			script = append(script, lines[j])
		}
		blocks = append(blocks, readmeBlock{file: file, line: i + 2, expect: strings.TrimSpace(m[1]), script: installed(strings.Join(script, "\n"))})
		i = j
	}
	return blocks
}

// svcregCommand is `svcreg` where a shell runs it as a command: at the
// start of a line, and after `$(`, `do`, `until`, `&&`, `|` and `(`.
var svcregCommand = regexp.MustCompile(`(?m)(^\s*|\$\(|\bdo |\buntil |&& |\| |\()svcreg `)

// installed is a README script running the binary this test built where
// the README runs the installed svcreg.
func installed(script string) string {
	return svcregCommand.ReplaceAllString(script, "${1}"+binary+" ")
}

// TestREADME runs the README's marked shell blocks, in order, against a
// real server on ports of its own: each must succeed and print what its
// marker expects, so the README cannot drift from what svcreg does.
func TestREADME(t *testing.T) {
	blocks := docBlocks(t, "README.md", "readme-test")
	if len(blocks) < 5 {
		t.Fatalf("only %d marked blocks in README.md", len(blocks))
	}
	p := startProc(t, "readme")
	p.waitReady(20 * time.Second)
	_, dnsPort, _ := net.SplitHostPort(p.dns)
	rewrite := strings.NewReplacer(
		"localhost:7480", p.http, "localhost:7400", p.grpc, "127.0.0.1:7400", p.grpc,
		"-p 7453", "-p "+dnsPort)
	dir := t.TempDir()
	for _, b := range blocks {
		runReadmeBlock(t, b, rewrite, dir, "SVCREG_ADDR="+p.grpc)
	}
}

// TestDocSecurity runs docs/security.md's "Try it" blocks: the
// first makes the certificates and the bootstrap token, then a TLS server
// starts with them (on ports of its own) and the others run against it.
func TestDocSecurity(t *testing.T) {
	blocks := docBlocks(t, "docs/security.md", "secure-test")
	if len(blocks) < 2 {
		t.Fatalf("only %d secure-test blocks in docs/security.md", len(blocks))
	}
	dir := t.TempDir()
	runReadmeBlock(t, blocks[0], strings.NewReplacer(), dir)
	certs := filepath.Join(dir, "certs")
	p := startProc(t, "secure", "--tls-cert", filepath.Join(certs, "n1.pem"), "--tls-key", filepath.Join(certs, "n1-key.pem"),
		"--peer-tls-ca", filepath.Join(certs, "ca.pem"), "--bootstrap-token-file", filepath.Join(certs, "bootstrap.token"))
	p.waitReady(20 * time.Second)
	rewrite := strings.NewReplacer("127.0.0.1:7411", p.grpc, "127.0.0.1:7491", p.http)
	for _, b := range blocks[1:] {
		runReadmeBlock(t, b, rewrite, dir)
	}
}

// TestDocProxy runs docs/proxy.md's "Try it in a network namespace" blocks as
// one root shell in a network namespace of the test's own, as the README
// tells the reader to: the registry and the agent on their default ports
// (a new namespace has nothing else bound, so they cannot collide), curl
// through the cluster IP in both modes.
func TestDocProxy(t *testing.T) {
	t.Parallel()
	blocks := docBlocks(t, "docs/proxy.md", "proxy-test")
	if len(blocks) < 2 {
		t.Fatalf("only %d proxy-test blocks in docs/proxy.md", len(blocks))
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the README's commands in a network namespace of its own (CI runs as root)")
	}
	// Everything the blocks start in the background is stopped on the way
	// out, which also removes the namespace.
	script := []string{`trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT`}
	for _, b := range blocks {
		script = append(script, b.script)
	}
	all := strings.Join(script, "\n")
	for _, tool := range []string{"curl", "dig", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (CI installs it)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "bash", "-e", "-o", "pipefail", "-c", all)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s:%d: the proxy blocks failed: %v\n%s", blocks[0].file, blocks[0].line, err, out)
	}
	expectInOrder(t, blocks, string(out))
}

// expectInOrder checks that out holds each block's expectation, in
// order, each after the previous one's.
func expectInOrder(t *testing.T, blocks []readmeBlock, out string) {
	t.Helper()
	rest := out
	for _, b := range blocks {
		i := strings.Index(rest, b.expect)
		if i < 0 {
			t.Fatalf("%s:%d: the output does not contain %q after the previous block's:\n%s", b.file, b.line, b.expect, out)
		}
		rest = rest[i+len(b.expect):]
	}
}

// runReadmeBlock runs a block in dir with its addresses rewritten: it
// must succeed and print what its marker expects.
func runReadmeBlock(t *testing.T, b readmeBlock, rewrite *strings.Replacer, dir string, env ...string) {
	t.Helper()
	script := rewrite.Replace(b.script)
	if tool := missingTool(script); tool != "" {
		t.Logf("%s:%d: skipped, %s is not installed (CI installs it)", b.file, b.line, tool)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s:%d: the block failed: %v\n%s\n%s", b.file, b.line, err, script, out)
		return
	}
	if !strings.Contains(string(out), b.expect) {
		t.Errorf("%s:%d: the output does not contain %q:\n%s", b.file, b.line, b.expect, out)
	}
}

// missingTool names a command a script calls that is not on PATH.
func missingTool(script string) string {
	for _, tool := range []string{"curl", "grpcurl", "dig", "kubectl"} {
		if regexp.MustCompile(`(^|[\s;|&(])` + tool + `\s`).MatchString(script) {
			if _, err := exec.LookPath(tool); err != nil {
				return tool
			}
		}
	}
	return ""
}

// TestDocHealth runs docs/health.md's "Try it" blocks as one shell
// (they share the greeters they start) against a real server on ports of
// its own, from the repository's root as the README says; the greeters
// bind port 0 and are built into the test's directory. Each block's
// expectation must follow the previous one's.
func TestDocHealth(t *testing.T) {
	t.Parallel()
	blocks := docBlocks(t, "docs/health.md", "health-test")
	if len(blocks) < 2 {
		t.Fatalf("only %d health-test blocks in docs/health.md", len(blocks))
	}
	for _, tool := range []string{"curl", "dig"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (CI installs it)", tool)
		}
	}
	p := startProc(t, "readme-health")
	p.waitReady(20 * time.Second)
	_, dnsPort, _ := net.SplitHostPort(p.dns)
	dir := t.TempDir()
	rewrite := strings.NewReplacer("localhost:7480", p.http, "-p 7453", "-p "+dnsPort,
		"-o tmp/", "-o "+dir+"/", "tmp/greeter-", dir+"/greeter-", "--port 9011", "--port 0", "--port 9012", "--port 0")
	script := []string{`trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT`}
	for _, b := range blocks {
		script = append(script, rewrite.Replace(b.script))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a bound: the build may be cold
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", strings.Join(script, "\n"))
	cmd.Dir, cmd.Env = "../..", append(os.Environ(), "SVCREG_ADDR="+p.grpc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s:%d: the health blocks failed: %v\n%s", blocks[0].file, blocks[0].line, err, out)
	}
	t.Logf("the blocks printed:\n%s", out)
	expectInOrder(t, blocks, string(out))
	if !strings.Contains(string(out), "3 from hello-b") || strings.Count(string(out), "from hello-a") != 1 {
		t.Errorf("zone-b's client or zone-a's after the failure reached hello-a:\n%s", out)
	}
}

func TestInstalled(t *testing.T) {
	tests := []struct{ in, want string }{
		{"svcreg get svc", "BIN get svc"},
		{"  svcreg proxy &", "  BIN proxy &"},
		{"ADMIN=$(svcreg token create)", "ADMIN=$(BIN token create)"},
		{"for n in 1 2; do svcreg cert issue; done", "for n in 1 2; do BIN cert issue; done"},
		{"until svcreg get endpoints | grep -q x; do sleep 1; done", "until BIN get endpoints | grep -q x; do sleep 1; done"},
		{"time (until svcreg get ep; do :; done)", "time (until BIN get ep; do :; done)"},
		{"a && svcreg token generate > t", "a && BIN token generate > t"},
		{"nft list table ip svcreg 2> /dev/null", "nft list table ip svcreg 2> /dev/null"},
		{"grpcurl localhost:7400 svcreg.v1.RegistryService/List", "grpcurl localhost:7400 svcreg.v1.RegistryService/List"},
		{"--target svcreg:///hello.default", "--target svcreg:///hello.default"},
	}
	defer func(b string) { binary = b }(binary)
	binary = "BIN"
	for _, tt := range tests {
		if got := installed(tt.in); got != tt.want {
			t.Errorf("installed(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDocCluster runs docs/cluster.md's blocks as the page says,
// on the README's own ports, in a network namespace of the test's own (a
// new namespace has nothing bound, so they cannot collide), in a
// directory of its own: the three servers of the first block start in
// the background, as three terminals would, and the second block runs
// once each answers /readyz.
func TestDocCluster(t *testing.T) {
	t.Parallel()
	blocks := docBlocks(t, "docs/cluster.md", "cluster-test")
	if len(blocks) != 2 {
		t.Fatalf("%d cluster-test blocks in docs/cluster.md, want 2", len(blocks))
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the README's cluster on its own ports in a network namespace of its own (CI runs as root)")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (CI installs it)")
	}
	var first []string
	for _, line := range strings.Split(blocks[0].script, "\n") {
		if strings.HasPrefix(line, binary+" serve ") {
			line += " > serve-$RANDOM.log 2>&1 &" // its own terminal
		}
		first = append(first, line)
	}
	script := strings.Join([]string{
		`trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT`,
		"ip link set lo up",
		strings.Join(first, "\n"),
		`for p in 7481 7482 7483; do until curl -sf localhost:$p/readyz > /dev/null; do sleep 0.2; done; done`,
		blocks[1].script,
	}, "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound: a busy machine is slow to elect
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs, _ := exec.Command("sh", "-c", "tail -n 20 "+cmd.Dir+"/serve-*.log").CombinedOutput()
		t.Fatalf("%s:%d: the cluster blocks failed: %v\n%s\nthe servers' logs:\n%s", blocks[0].file, blocks[0].line, err, out, logs)
	}
	for _, want := range []string{"n1  127.0.0.1:8101", "n2  127.0.0.1:8102", "n3  127.0.0.1:8103", `"name":"web"`, "saved ", "restored;", "leader: n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}
