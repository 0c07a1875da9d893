// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/certs"
	"github.com/svcreg/svcreg/internal/clientauth"
)

// AuthMode says whether requests need a token.
type AuthMode string

// The auth modes.
const (
	// AuthAuto (the default): on, unless the server is a loopback quick
	// start (every port on loopback, no data dir, no TLS, no bootstrap
	// token).
	AuthAuto AuthMode = ""
	AuthOn   AuthMode = "on"
	// AuthOff lets anyone who reaches a port do anything; on a port that
	// is not loopback it needs InsecureExpose.
	AuthOff AuthMode = "off"
)

// Security configures TLS and tokens (docs/security.md).
type Security struct {
	// TLSCert and TLSKey serve the gRPC and REST ports over TLS (1.2 or
	// later); TLSClientCA requires client certificates from that CA on
	// both (mutual TLS). The files are read again when they change.
	TLSCert, TLSKey, TLSClientCA string
	// PeerTLSCA puts the peer port on mutual TLS: every server presents a
	// certificate from this CA (the cluster CA) naming certs.PeerName.
	// PeerTLSCert and PeerTLSKey default to TLSCert and TLSKey.
	PeerTLSCert, PeerTLSKey, PeerTLSCA string
	// TLSReloadInterval is how often the files are checked for changes;
	// default 10s (ReloadTLS checks at once: SIGHUP).
	TLSReloadInterval time.Duration

	Auth AuthMode
	// BootstrapToken becomes the operator token of a cluster that never
	// had a token. Without it, the first leader of a durable cluster makes
	// one and writes it to a 0600 file in its data dir.
	BootstrapToken string
	// InsecureExpose allows ports that are not loopback without TLS or
	// without auth (a warning at every start).
	InsecureExpose bool
	// MetricsAuth makes /metrics require a token that may read every
	// namespace (a reader bound to "*"); it needs auth on.
	MetricsAuth bool
	// HTTPAllowedHosts are the host names the REST port answers to, beside
	// IP addresses, "localhost" and the TLS certificate's names: a request
	// naming another host (a DNS rebinding page) is refused.
	HTTPAllowedHosts []string
	// DNSHiddenNamespaces are namespace patterns ("team-*", "*") DNS does
	// not answer for: DNS carries no credential.
	DNSHiddenNamespaces []string
}

// bootstrapFile is where a durable cluster's first leader writes the
// operator token it made.
const bootstrapFile = "bootstrap-token"

// plan is what Security decided at start.
type plan struct {
	auth     bool
	tls      *certs.Reloader // client port and REST; nil: plaintext
	peerTLS  *certs.Reloader
	warnings []string
	notes    []string
}

// exposed reports whether a listen address is reachable from other
// machines (anything but loopback; "-" is a disabled port).
func exposed(addr string) bool {
	if addr == "" || addr == "-" {
		return false
	}
	return !clientauth.Loopback(addr)
}

// securityPlan checks the security settings against the listen addresses
// and loads the TLS files. A server reachable from other machines starts
// only with TLS and auth, or with InsecureExpose.
func (s *Server) securityPlan() (*plan, error) {
	c, sec := &s.cfg, &s.cfg.Security
	if err := checkSecurityFlags(sec); err != nil {
		return nil, err
	}
	p := &plan{}
	ports := []struct{ flag, addr string }{{"--grpc-addr", c.GRPCAddr}, {"--http-addr", c.HTTPAddr}}
	anyExposed := false
	for _, port := range ports {
		if !exposed(port.addr) {
			continue
		}
		anyExposed = true
		if sec.TLSCert == "" && !sec.InsecureExpose {
			return nil, fmt.Errorf("%s %s is not a loopback address, and serving it takes TLS and tokens: add --tls-cert FILE --tls-key FILE "+
				"(auth turns on with them; `svcreg cert` makes a CA and certificates), or --insecure-expose to serve it in plaintext anyway", port.flag, port.addr)
		}
	}
	if exposed(c.RaftAddr) {
		anyExposed = true
		if sec.PeerTLSCA == "" && !sec.InsecureExpose {
			return nil, fmt.Errorf("--raft-addr %s is not a loopback address, and the peer port carries the whole registry: add --peer-tls-ca FILE "+
				"(the cluster CA; the server's certificate must name %s), or --insecure-expose to run it in plaintext anyway", c.RaftAddr, certs.PeerName)
		}
	}
	switch sec.Auth {
	case AuthOn:
		p.auth = true
	case AuthOff:
		if anyExposed && !sec.InsecureExpose {
			return nil, errors.New("--auth off on a port that is not loopback lets anyone who reaches it do anything: add --insecure-expose to mean it")
		}
	case AuthAuto:
		p.auth = sec.TLSCert != "" || sec.BootstrapToken != "" || c.DataDir != ""
	default:
		return nil, fmt.Errorf("--auth %q: want on, off or empty (auto)", sec.Auth)
	}
	peerPort := c.RaftAddr != "" || c.PeerAddr != ""
	if p.auth && peerPort && len(c.ClusterSecret) == 0 && sec.PeerTLSCA == "" && !sec.InsecureExpose {
		return nil, errors.New("auth is on, but the peer port would admit any server (and a server may act for any token): " +
			"add --peer-tls-ca FILE or --cluster-secret-file FILE")
	}
	if p.auth && c.DataDir == "" && sec.BootstrapToken == "" {
		return nil, errors.New("auth is on and this server keeps no data dir to write a bootstrap token to: " +
			"add --bootstrap-token-file FILE (its one line becomes the operator token), or --data-dir DIR")
	}
	if sec.MetricsAuth && !p.auth {
		return nil, errors.New("--metrics-auth checks tokens, and auth is off: turn it on (a data dir, TLS, --bootstrap-token-file or --auth on)")
	}
	if err := s.loadTLS(p); err != nil {
		return nil, err
	}
	switch {
	case anyExposed && sec.InsecureExpose && (p.tls == nil || !p.auth):
		p.warnings = append(p.warnings, "--insecure-expose: ports that are not loopback serve without TLS or without tokens; anyone who reaches them can read, change or wipe the registry")
	case !p.auth:
		p.notes = append(p.notes, "auth is off: a loopback quick start, in which anyone on this machine may do anything (a data dir, TLS or --bootstrap-token-file turns it on)")
	}
	return p, nil
}

// checkSecurityFlags checks the settings that go together.
func checkSecurityFlags(sec *Security) error {
	switch {
	case (sec.TLSCert == "") != (sec.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case sec.TLSClientCA != "" && sec.TLSCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over TLS")
	case (sec.PeerTLSCert == "") != (sec.PeerTLSKey == ""):
		return errors.New("--peer-tls-cert and --peer-tls-key go together")
	case sec.PeerTLSCA != "" && sec.PeerTLSCert == "" && sec.TLSCert == "":
		return errors.New("--peer-tls-ca needs this server's certificate: --peer-tls-cert and --peer-tls-key, or --tls-cert and --tls-key")
	case sec.PeerTLSCert != "" && sec.PeerTLSCA == "":
		return errors.New("--peer-tls-cert needs --peer-tls-ca, the CA the other servers' certificates chain to")
	}
	if t := sec.BootstrapToken; t != "" && (len(t) < 16 || len(t) > 512 || strings.ContainsAny(t, " \t\r\n")) {
		return errors.New("the bootstrap token must be one line of 16 to 512 characters without spaces")
	}
	for i, pattern := range sec.DNSHiddenNamespaces {
		if !auth.ValidPattern(pattern) {
			return fmt.Errorf("--dns-hide-namespace[%d] %q: want a namespace, a prefix ending in '*', or '*'", i, pattern)
		}
	}
	return nil
}

func (s *Server) loadTLS(p *plan) error {
	sec := &s.cfg.Security
	var err error
	if sec.TLSCert != "" {
		if p.tls, err = certs.NewReloader(certs.Files{Cert: sec.TLSCert, Key: sec.TLSKey, CA: sec.TLSClientCA}, s.log); err != nil {
			return err
		}
	}
	if sec.PeerTLSCA != "" {
		files := certs.Files{Cert: sec.PeerTLSCert, Key: sec.PeerTLSKey, CA: sec.PeerTLSCA}
		if files.Cert == "" {
			files.Cert, files.Key = sec.TLSCert, sec.TLSKey
		}
		if p.peerTLS, err = certs.NewReloader(files, s.log); err != nil {
			return fmt.Errorf("peer TLS: %w", err)
		}
		if err := p.peerTLS.Certificate().Leaf.VerifyHostname(certs.PeerName); err != nil {
			return fmt.Errorf("peer TLS: the certificate %s does not name %s, which every server's peer certificate must", files.Cert, certs.PeerName)
		}
	}
	return nil
}

// ReloadTLS reads the TLS files again if they changed (on SIGHUP); a file
// that does not load keeps the previous material.
func (s *Server) ReloadTLS() {
	for _, r := range []*certs.Reloader{s.plan.tls, s.plan.peerTLS} {
		if r != nil {
			r.Check()
		}
	}
}

// watchTLS checks the TLS files for changes every TLSReloadInterval.
func (s *Server) watchTLS(ctx context.Context) {
	if s.plan.tls == nil && s.plan.peerTLS == nil {
		return
	}
	t := time.NewTicker(s.cfg.Security.TLSReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.ReloadTLS()
		}
	}
}

// bootstrapTokens makes the operator token of a cluster that never had a
// token, once this server leads and has applied everything before: from
// BootstrapToken, else a new one written to the data dir first (so that
// it is never lost to a crash between the commit and the write).
func (s *Server) bootstrapTokens(ctx context.Context) {
	if !s.plan.auth {
		return
	}
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		if !s.node.IsLeader() {
			return
		}
		done, err := s.tryBootstrap(ctx)
		if done || ctx.Err() != nil {
			return
		}
		s.log.Warn("creating the bootstrap token", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func (s *Server) tryBootstrap(ctx context.Context) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, maxCatchUp)
	defer cancel()
	if err := s.node.WaitCaughtUp(wctx); err != nil {
		return false, err
	}
	if s.store.Read().TokensBootstrapped() {
		return true, nil
	}
	secret, where, err := s.bootstrapSecret()
	if err != nil {
		return false, err
	}
	cmd := &storev1.Command{Time: timestamppb.New(s.cfg.Clock.Now()), Op: &storev1.Command_CreateToken{CreateToken: &storev1.StoredToken{
		SecretSha256: auth.Hash(secret),
		Token: &svcregv1.Token{Accessor: "bootstrap", Description: "the bootstrap operator token",
			Roles: []*svcregv1.RoleBinding{{Role: svcregv1.Role_ROLE_OPERATOR}}},
	}}}
	if _, err := s.node.Apply(ctx, cmd); err != nil {
		if s.store.Read().TokensBootstrapped() {
			return true, nil
		}
		return false, err
	}
	s.log.Info("created the bootstrap operator token (accessor bootstrap): use it to create the others, then revoke it", "from", where)
	return true, nil
}

// bootstrapSecret is the bootstrap token and where it came from.
func (s *Server) bootstrapSecret() (secret, where string, err error) {
	if t := s.cfg.Security.BootstrapToken; t != "" {
		return t, "--bootstrap-token-file", nil
	}
	file := filepath.Join(s.cfg.DataDir, bootstrapFile)
	if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), file, nil // written by an attempt that did not commit
	}
	secret = auth.NewSecret()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", "", err
	}
	return secret, file, f.Close()
}
