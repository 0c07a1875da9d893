// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svcreg/svcreg/internal/certs"
)

const certUsage = `usage:
  svcreg cert ca --dir DIR                  make a CA: DIR/ca.pem, DIR/ca-key.pem
  svcreg cert issue --dir DIR --name NAME [--host H]... [--uri URI]... [--peer] [--days N]
        issue DIR/NAME.pem and DIR/NAME-key.pem from DIR's CA; --peer makes it a
        cluster server's peer certificate (it names ` + certs.PeerName + `)`

// certCmd is `svcreg cert ca|issue`: a small CA for the registry's TLS,
// so that securing a cluster needs no other tool (openssl works too:
// docs/security.md).
func certCmd(args []string) error {
	if len(args) == 0 {
		return errors.New(certUsage)
	}
	fs := flag.NewFlagSet("cert "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", ".", "directory of the CA and the certificates")
	name := fs.String("name", "", "file name (and common name) of the certificate")
	var hosts, uris []string
	fs.Func("host", "DNS name or IP address the certificate is for (repeatable, or comma-separated)", func(v string) error {
		hosts = append(hosts, strings.Split(v, ",")...)
		return nil
	})
	fs.Func("uri", "URI SAN, the identity of a client certificate (repeatable)", func(v string) error {
		uris = append(uris, v)
		return nil
	})
	peer := fs.Bool("peer", false, "a cluster server's certificate, for the peer port too")
	days := fs.Int("days", 365, "validity in days")
	if _, err := parseInterleaved(fs, args[1:]); err != nil {
		return err
	}
	validity := time.Duration(*days) * 24 * time.Hour
	switch args[0] {
	case "ca":
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(*dir, "ca.pem")); err == nil {
			return fmt.Errorf("%s already holds a CA (ca.pem); remove it first to make a new one", *dir)
		}
		ca, err := certs.NewCA("svcreg CA", validity)
		if err != nil {
			return err
		}
		if err := ca.Save(*dir); err != nil {
			return err
		}
		fmt.Println(filepath.Join(*dir, "ca.pem"))
		return nil
	case "issue":
		if *name == "" || strings.ContainsAny(*name, `/\`) {
			return errors.New("--name: want a file name such as node1 or client")
		}
		ca, err := certs.LoadCA(*dir)
		if err != nil {
			return err
		}
		leaf, err := ca.Issue(certs.Leaf{CommonName: *name, Hosts: hosts, URIs: uris, Peer: *peer, Validity: validity})
		if err != nil {
			return err
		}
		certFile, keyFile := filepath.Join(*dir, *name+".pem"), filepath.Join(*dir, *name+"-key.pem")
		if err := certs.WritePair(leaf, certFile, keyFile); err != nil {
			return err
		}
		fmt.Println(certFile)
		return nil
	}
	return errors.New(certUsage)
}
