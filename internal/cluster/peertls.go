// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// A cluster secret alone (no --peer-tls-ca) makes the peer port speak
// mutual TLS 1.3 with a key derived from the secret: both ends derive the
// same Ed25519 key pair (HKDF-SHA256 of the secret), present it in a
// self-signed certificate, and accept only a peer presenting that public
// key. Only a holder of the secret can complete the TLS handshake, and
// everything after it is encrypted and authenticated under keys from that
// handshake: a program that relays the handshake between a server and a
// real peer ends up with a pipe of ciphertext it can neither read nor
// add to. (A MAC exchange alone proves knowledge of the secret once and
// binds nothing after it: such a relay then owned an authenticated peer
// connection.) Go's TLS has no external pre-shared keys; a pinned derived
// key gives the same binding.

// secretTLS is the TLS of the peer port derived from the cluster secret.
type secretTLS struct {
	cert tls.Certificate
	pub  ed25519.PublicKey
}

func newSecretTLS(secret []byte) (*secretTLS, error) {
	seed, err := hkdf.Key(sha256.New, secret, []byte("svcreg peer port"), "svcreg-peer-tls-ed25519-v1", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "svcreg cluster peer"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &secretTLS{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pub: key.Public().(ed25519.PublicKey)}, nil
}

// verify accepts only a certificate carrying the derived public key (the
// certificate is otherwise meaningless: it pins a key, not a name).
func (s *secretTLS) verify(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return errors.New("no certificate: the other end does not know the cluster secret")
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || !bytes.Equal(pub, s.pub) {
		return errors.New("the other end does not know the cluster secret (its key is not the one the secret derives)")
	}
	return nil
}

func (s *secretTLS) server() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{s.cert},
		ClientAuth: tls.RequireAnyClientCert, VerifyPeerCertificate: s.verify}
}

func (s *secretTLS) client() *tls.Config {
	// The chain is checked by verify (a pinned key), not against roots.
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{s.cert},
		InsecureSkipVerify: true, VerifyPeerCertificate: s.verify, ServerName: "svcreg-peer"}
}

// identifiedConn is an admitted peer connection and the node ID its
// dialer proved with the handshake.
type identifiedConn struct {
	net.Conn
	id string
}

// PeerInfo is what the peer gRPC surface knows of its caller: the node ID
// its handshake bound (a holder of the cluster secret, or of a cluster
// certificate, speaking for that server).
type PeerInfo struct {
	credentials.CommonAuthInfo
	ID string
}

// AuthType implements credentials.AuthInfo.
func (PeerInfo) AuthType() string { return "svcreg-peer" }

// PeerCredentials are the peer gRPC server's transport credentials: the
// peer port already ran TLS and the handshake, so they only attach the
// caller's identity (PeerOf reads it back in a handler).
func PeerCredentials() credentials.TransportCredentials { return peerCredentials{} }

type peerCredentials struct{}

func (peerCredentials) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, PeerInfo{}, nil
}

func (peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := PeerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
	if ic, ok := conn.(*identifiedConn); ok {
		info.ID = ic.id
		if _, tlsConn := ic.Conn.(*tls.Conn); tlsConn {
			info.SecurityLevel = credentials.PrivacyAndIntegrity
		}
	}
	return conn, info, nil
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "svcreg-peer"}
}
func (c peerCredentials) Clone() credentials.TransportCredentials { return c }
func (peerCredentials) OverrideServerName(string) error           { return nil }

// PeerOf is the node ID of the server that made a peer-port call, or "".
func PeerOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(PeerInfo); ok {
			return info.ID
		}
	}
	return ""
}
