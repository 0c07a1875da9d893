// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/svcreg/svcreg/internal/clientauth"
	"github.com/svcreg/svcreg/server"
)

// kubeconfigCmd is `svcreg kubeconfig`: a kubeconfig for kubectl, client-go
// and CoreDNS that reaches this registry's Kubernetes API (on its HTTP
// port, docs/kubernetes.md) with the command line's token and CA. It asks
// the server's /version first, so a kubeconfig it prints works.
func kubeconfigCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("kubeconfig", flag.ContinueOnError)
	conn := addConnFlags(fs)
	serverURL := fs.String("server", "", "the registry's HTTP URL (its --http-addr; default: the host of --addr on port 7480, https when a CA is given)")
	namespace := fs.String("namespace", "default", "the context's namespace")
	name := fs.String("name", "svcreg", "the name of the cluster, user and context")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	token, caFile, err := clientauth.Config{Token: *conn.token, TokenFile: *conn.tokenFile, CAFile: *conn.caCert}.Credentials()
	if err != nil {
		return err
	}
	url := *serverURL
	if url == "" {
		url = defaultKubeServer(*conn.addr, caFile != "")
	}
	var ca []byte
	if caFile != "" {
		if ca, err = os.ReadFile(caFile); err != nil {
			return fmt.Errorf("reading the registry's CA: %w", err)
		}
	}
	if err := checkKubeServer(ctx, url, token, ca); err != nil {
		return err
	}
	cluster := map[string]any{"server": url}
	if ca != nil {
		cluster["certificate-authority-data"] = base64.StdEncoding.EncodeToString(ca)
	}
	user := map[string]any{}
	if token != "" {
		user["token"] = token
	}
	doc := map[string]any{
		"apiVersion": "v1", "kind": "Config",
		"clusters":        []any{map[string]any{"name": *name, "cluster": cluster}},
		"users":           []any{map[string]any{"name": *name, "user": user}},
		"contexts":        []any{map[string]any{"name": *name, "context": map[string]any{"cluster": *name, "user": *name, "namespace": *namespace}}},
		"current-context": *name,
	}
	enc := yaml.NewEncoder(out)
	enc.SetIndent(2)
	return enc.Encode(doc)
}

// defaultKubeServer is the HTTP port beside the gRPC address: the same
// host, the default HTTP port.
func defaultKubeServer(grpcAddr string, tls bool) string {
	if grpcAddr == "" {
		grpcAddr = os.Getenv("SVCREG_ADDR")
	}
	host := "127.0.0.1"
	if h, _, err := net.SplitHostPort(grpcAddr); err == nil && h != "" {
		host = h
	}
	_, port, _ := net.SplitHostPort(server.DefaultHTTPAddr)
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// checkKubeServer asks url's /version, as kubectl would, and says what to
// do when that fails.
func checkKubeServer(ctx context.Context, url, token string, ca []byte) error {
	tr := &http.Transport{}
	if ca != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return errors.New("the registry's CA holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(url, "/")+"/version", nil)
	if err != nil {
		return fmt.Errorf("--server %q: %w", url, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("the registry's Kubernetes API at %s does not answer (%v): give its HTTP URL with --server (the server's --http-addr)", url, err)
	}
	defer resp.Body.Close()
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&v); err != nil || !strings.Contains(v.GitVersion, "svcreg") {
		return fmt.Errorf("%s/version is not a svcreg registry's (HTTP %d): give its HTTP URL with --server", url, resp.StatusCode)
	}
	return nil
}
