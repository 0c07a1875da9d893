// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/auth"
	"github.com/svcreg/svcreg/internal/certs"
	"github.com/svcreg/svcreg/internal/clientauth"
	"github.com/svcreg/svcreg/server"
)

// secureSetup is an in-process registry's TLS material and bootstrap
// token, in a temporary directory.
type secureSetup struct {
	dir       string
	security  server.Security
	bootstrap string
}

func newSecureSetup() (*secureSetup, error) {
	dir, err := os.MkdirTemp("", "svcreg-bench-tls-")
	if err != nil {
		return nil, err
	}
	s := &secureSetup{dir: dir, bootstrap: auth.NewSecret()}
	ca, err := certs.NewCA("svcreg bench CA", time.Hour)
	if err != nil {
		s.close()
		return nil, err
	}
	leaf, err := ca.Issue(certs.Leaf{CommonName: "svcreg bench", Hosts: []string{"127.0.0.1", "localhost"}, Validity: time.Hour})
	if err != nil {
		s.close()
		return nil, err
	}
	if err := ca.Save(dir); err != nil {
		s.close()
		return nil, err
	}
	s.security = server.Security{TLSCert: filepath.Join(dir, "server.pem"), TLSKey: filepath.Join(dir, "server-key.pem"), BootstrapToken: s.bootstrap}
	if err := certs.WritePair(leaf, s.security.TLSCert, s.security.TLSKey); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// dialOptions creates an admin token of the bench namespace with the
// bootstrap token, and returns the options that dial with it over TLS.
func (s *secureSetup) dialOptions(ctx context.Context, addr string) ([]grpc.DialOption, error) {
	ca := filepath.Join(s.dir, "ca.pem")
	boot, err := clientauth.Config{Token: s.bootstrap, CAFile: ca, NoEnv: true}.DialOptions(addr)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, boot...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var resp *svcregv1.CreateTokenResponse
	for {
		resp, err = svcregv1grpc.NewTokenServiceClient(conn).CreateToken(ctx, &svcregv1.CreateTokenRequest{Token: &svcregv1.Token{
			Description: "svcreg bench", Roles: []*svcregv1.RoleBinding{{Role: svcregv1.Role_ROLE_ADMIN, Namespaces: []string{namespace}}}}})
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // the bootstrap token is being made
	}
	if err != nil {
		return nil, fmt.Errorf("creating the bench token: %w", err)
	}
	return clientauth.Config{Token: resp.GetSecret(), CAFile: ca, NoEnv: true}.DialOptions(addr)
}

func (s *secureSetup) close() { os.RemoveAll(s.dir) }
