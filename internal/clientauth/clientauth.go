// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package clientauth is how the SDK, the resolver and the CLI prove who
// they are to a registry (docs/security.md): a bearer token sent as
// `authorization: Bearer ...` metadata on every call, and TLS that checks
// the registry's certificate against a CA (and may present a client
// certificate for mutual TLS). Each setting falls back to the
// environment: SVCREG_TOKEN, SVCREG_TOKEN_FILE, SVCREG_CACERT.
package clientauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// The environment variables every client reads.
const (
	EnvToken     = "SVCREG_TOKEN"
	EnvTokenFile = "SVCREG_TOKEN_FILE"
	EnvCACert    = "SVCREG_CACERT"
)

// Config is a client's credentials. The zero value with FromEnv unset
// dials in plaintext without a token: a loopback quick start.
type Config struct {
	// Token is the bearer token.
	Token string
	// TokenFile holds the bearer token on its first line; it is read again
	// when it changes, so a rotated token is picked up without a restart.
	TokenFile string
	// CAFile is a PEM bundle the registry's certificate must chain to;
	// setting it turns TLS on.
	CAFile string
	// TLS is a full TLS configuration (client certificates, server name);
	// CAFile, when also set, adds to its roots.
	TLS *tls.Config
	// NoEnv: do not fall back to the environment.
	NoEnv bool
}

// withEnv fills what is unset from the environment.
func (c Config) withEnv() Config {
	if c.NoEnv {
		return c
	}
	if c.Token == "" && c.TokenFile == "" {
		c.Token = strings.TrimSpace(os.Getenv(EnvToken))
		if c.Token == "" {
			c.TokenFile = os.Getenv(EnvTokenFile)
		}
	}
	if c.CAFile == "" && c.TLS == nil {
		c.CAFile = os.Getenv(EnvCACert)
	}
	return c
}

// Credentials are the token (read from its file, when one is named) and
// the CA file the configuration resolves to, the environment included: for
// a program that hands them to another client (svcreg kubeconfig).
func (c Config) Credentials() (token, caFile string, err error) {
	c = c.withEnv()
	if c.Token != "" || c.TokenFile != "" {
		if token, err = (&bearer{static: c.Token, file: c.TokenFile}).current(); err != nil {
			return "", "", err
		}
	}
	return token, c.CAFile, nil
}

// DialOptions are the gRPC dial options that carry the credentials to
// the registry at addr. A token is never sent in plaintext to an address
// that is not loopback: that is an error here, not a leak later.
func (c Config) DialOptions(addr string) ([]grpc.DialOption, error) {
	c = c.withEnv()
	tlsConf, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	var opts []grpc.DialOption
	if tlsConf != nil {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.Token == "" && c.TokenFile == "" {
		return opts, nil
	}
	if tlsConf == nil && !Loopback(addr) {
		return nil, fmt.Errorf("refusing to send a token in plaintext to %s, which is not loopback: give the registry's CA (--cacert or %s)", addr, EnvCACert)
	}
	tok := &bearer{static: c.Token, file: c.TokenFile}
	if _, err := tok.current(); err != nil {
		return nil, err
	}
	return append(opts, grpc.WithPerRPCCredentials(tok)), nil
}

// tlsConfig is the TLS configuration, or nil for plaintext.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLS == nil && c.CAFile == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS != nil {
		conf = c.TLS.Clone()
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the registry's CA: %w", err)
		}
		if conf.RootCAs == nil {
			conf.RootCAs = x509.NewCertPool()
		}
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the registry's CA %s holds no PEM certificate", c.CAFile)
		}
	}
	return conf, nil
}

// Loopback reports whether addr (host:port, or a host) is a loopback
// address or localhost.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// bearer is the per-call credential: a token, or a token file re-read when
// its modification time changes.
type bearer struct {
	static, file string

	mu      sync.Mutex
	modTime time.Time
	cached  string
}

func (b *bearer) current() (string, error) {
	if b.file == "" {
		return b.static, nil
	}
	st, err := os.Stat(b.file)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cached != "" && st.ModTime().Equal(b.modTime) {
		return b.cached, nil
	}
	raw, err := os.ReadFile(b.file)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	tok, _, _ := strings.Cut(string(raw), "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", errors.New("the token file " + b.file + " is empty")
	}
	b.cached, b.modTime = tok, st.ModTime()
	return tok, nil
}

func (b *bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok, err := b.current()
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity is false: DialOptions already refused a
// plaintext token to anything but loopback.
func (*bearer) RequireTransportSecurity() bool { return false }
