// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package certs holds the registry's TLS material (docs/security.md):
// certificate, key and CA files that reload without a restart, and the
// generation of a CA and of the certificates `svcreg cert` and the tests
// issue.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Files names a certificate, its key, and optionally a CA bundle.
type Files struct {
	Cert, Key string
	// CA verifies the other end: clients on the client port (mutual TLS),
	// or the other servers on the peer port.
	CA string
}

// material is what one successful load read.
type material struct {
	cert    *tls.Certificate
	pool    *x509.CertPool // nil without a CA file
	modTime [3]time.Time
}

// Reloader serves TLS material from files and reads them again when they
// change (Check, on a timer and on SIGHUP). A change that does not load
// (a half-written file, a key that does not match) keeps the previous
// material and is logged: rotation can never take the server down, and
// connections already open, watches included, are not touched.
type Reloader struct {
	files Files
	log   *slog.Logger
	cur   atomic.Pointer[material]
	mu    sync.Mutex // one Check at a time
}

// Names are the DNS names of the current certificate.
func (r *Reloader) Names() []string {
	m := r.cur.Load()
	if m == nil || len(m.cert.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(m.cert.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf.DNSNames
}

// NewReloader loads files, failing when they do not load now.
func NewReloader(files Files, log *slog.Logger) (*Reloader, error) {
	r := &Reloader{files: files, log: log}
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	return r, nil
}

func (r *Reloader) load() (*material, error) {
	var m material
	for i, f := range []string{r.files.Cert, r.files.Key, r.files.CA} {
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		m.modTime[i] = st.ModTime()
	}
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", r.files.Cert, r.files.Key, err)
	}
	if cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("TLS certificate %s expired on %s", r.files.Cert, cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	m.cert = &cert
	if r.files.CA != "" {
		if m.pool, err = LoadPool(r.files.CA); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// LoadPool reads a PEM CA bundle.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Check reloads the files if any of them changed, and reports whether the
// material changed. A failed load is logged and the old material kept.
func (r *Reloader) Check() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	changed := false
	for i, f := range []string{r.files.Cert, r.files.Key, r.files.CA} {
		if f == "" {
			continue
		}
		if st, err := os.Stat(f); err != nil || !st.ModTime().Equal(old.modTime[i]) {
			changed = true
		}
	}
	if !changed {
		return false
	}
	m, err := r.load()
	if err != nil {
		r.log.Error("TLS material changed but does not load: still serving the previous certificate", "cert", r.files.Cert, "err", err)
		return false
	}
	r.cur.Store(m)
	r.log.Info("TLS material reloaded", "cert", r.files.Cert, "not_after", notAfter(m.cert))
	return true
}

func notAfter(c *tls.Certificate) string {
	if c.Leaf == nil {
		return ""
	}
	return c.Leaf.NotAfter.Format(time.RFC3339)
}

// Certificate is the current certificate.
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load().cert }

// Pool is the current CA pool (nil without a CA file).
func (r *Reloader) Pool() *x509.CertPool { return r.cur.Load().pool }

// ServerConfig is a listener's TLS configuration: the current certificate
// on every handshake and, with a CA, client certificates required and
// verified against the current CA (mutual TLS). TLS 1.2 at least.
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: nextProtos}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.cur.Load()
			c := base.Clone()
			c.Certificates = []tls.Certificate{*m.cert}
			if m.pool != nil {
				c.ClientCAs, c.ClientAuth = m.pool, tls.RequireAndVerifyClientCert
			}
			return c, nil
		},
	}
}

// ErrNoIdentity: a verified client certificate names nobody.
var ErrNoIdentity = errors.New("the client certificate has no URI or DNS name")

// Identity is the identity a verified certificate names: its first URI
// SAN (a SPIFFE ID, say), else its first DNS SAN.
func Identity(cert *x509.Certificate) (string, error) {
	if len(cert.URIs) > 0 {
		return cert.URIs[0].String(), nil
	}
	if len(cert.DNSNames) > 0 {
		return cert.DNSNames[0], nil
	}
	return "", ErrNoIdentity
}

// PeerName is the DNS name every server's peer certificate carries, and
// the name each server checks on the other end of a peer connection: a
// certificate from the cluster's CA that lacks it (a client's, say) is
// not a server of the cluster.
const PeerName = "svcreg-peer"

// PeerServerConfig is the peer port's TLS configuration: the other server
// must present a certificate from the cluster CA that names PeerName.
func (r *Reloader) PeerServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.cur.Load()
			return &tls.Config{
				MinVersion:       tls.VersionTLS13,
				Certificates:     []tls.Certificate{*m.cert},
				ClientCAs:        m.pool,
				ClientAuth:       tls.RequireAndVerifyClientCert,
				VerifyConnection: verifyPeerName,
			}, nil
		},
	}
}

// PeerClientConfig is a dial's TLS configuration to another server: its
// certificate must chain to the cluster CA and name PeerName.
func (r *Reloader) PeerClientConfig() *tls.Config {
	m := r.cur.Load()
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      m.pool,
		ServerName:   PeerName,
		Certificates: []tls.Certificate{*m.cert},
	}
}

func verifyPeerName(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no peer certificate")
	}
	if err := cs.PeerCertificates[0].VerifyHostname(PeerName); err != nil {
		return fmt.Errorf("the certificate is not a cluster server's (it must name %s): %w", PeerName, err)
	}
	return nil
}
