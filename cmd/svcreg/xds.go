// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcregv1grpc "github.com/svcreg/svcreg/gen/svcreg/v1/svcregv1grpc"
	"github.com/svcreg/svcreg/internal/meta"
)

// xdsCmd is `svcreg xds bootstrap`: the bootstrap a proxyless gRPC client
// of any language reads (GRPC_XDS_BOOTSTRAP names a file holding it,
// GRPC_XDS_BOOTSTRAP_CONFIG holds it) to use the registry as its xDS
// server (gRFC A27).
func xdsCmd(ctx context.Context, args []string) error {
	switch {
	case len(args) > 0 && args[0] == "clients":
		return xdsClientsCmd(ctx, args[1:])
	case len(args) == 0 || args[0] != "bootstrap":
		return errors.New("usage: svcreg xds bootstrap [--server ADDR] [--node-id ID] [--zone ZONE] [--cacert FILE [--cert FILE --key FILE]]\n" +
			"       svcreg xds clients [--addr ADDR] [--json]")
	}
	fs := flag.NewFlagSet("xds bootstrap", flag.ContinueOnError)
	server := fs.String("server", "", "the registry's gRPC address (default $SVCREG_ADDR or 127.0.0.1:7400)")
	nodeID := fs.String("node-id", "", "the client's node id, shown by the registry (default the host name)")
	zone := fs.String("zone", "", "the client's zone (its locality)")
	caCert := fs.String("cacert", "", "PEM CA the registry's certificate chains to: TLS to the registry (default $SVCREG_CACERT)")
	cert := fs.String("cert", "", "client certificate for mutual TLS")
	key := fs.String("key", "", "the client certificate's key")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *caCert == "" {
		*caCert = os.Getenv("SVCREG_CACERT")
	}
	if *nodeID == "" {
		host, _ := os.Hostname()
		*nodeID = "svcreg-client-" + host
	}
	js, err := xdsBootstrap(meta.RegistryAddr(*server), *nodeID, *zone, *caCert, *cert, *key)
	if err != nil {
		return err
	}
	fmt.Println(string(js))
	return nil
}

// xdsClientsCmd is `svcreg xds clients`: the xDS streams open on the
// server asked, one line per client and resource type, with what it last
// accepted and, when it rejected a response, why.
func xdsClientsCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("xds clients", flag.ContinueOnError)
	conn := addConnFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	c, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := svcregv1grpc.NewXDSServiceClient(c.Conn()).ListXDSClients(ctx, &svcregv1.ListXDSClientsRequest{})
	if err != nil {
		return err
	}
	if *asJSON {
		js, err := protojson.Marshal(resp)
		if err != nil {
			return err
		}
		fmt.Println(string(js))
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPEER\tUSER AGENT\tTYPE\tRESOURCES\tACKED\tSENT\tNACK")
	for _, cl := range resp.GetClients() {
		for _, t := range cl.GetTypes() {
			nack := "-"
			if t.GetNackReason() != "" {
				nack = fmt.Sprintf("version %s: %s", t.GetNackedVersion(), t.GetNackReason())
			}
			names := strings.Join(t.GetResourceNames(), ",")
			if names == "" {
				names = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cl.GetNodeId(), cl.GetPeer(), cl.GetUserAgent(),
				t.GetTypeUrl()[strings.LastIndex(t.GetTypeUrl(), ".")+1:], names, orDash(t.GetAckedVersion()), orDash(t.GetSentVersion()), nack)
		}
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// xdsBootstrap builds the bootstrap JSON: the registry as the one xDS
// server, insecure or TLS (gRFC A65's file-based certificates, paths made
// absolute so the client may run elsewhere), and the node.
func xdsBootstrap(server, nodeID, zone, caCert, cert, key string) ([]byte, error) {
	creds := map[string]any{"type": "insecure"}
	if caCert != "" {
		cfg := map[string]string{}
		for name, path := range map[string]string{"ca_certificate_file": caCert, "certificate_file": cert, "private_key_file": key} {
			if path == "" {
				continue
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				return nil, err
			}
			cfg[name] = abs
		}
		creds = map[string]any{"type": "tls", "config": cfg}
	} else if cert != "" || key != "" {
		return nil, errors.New("--cert and --key need --cacert (mutual TLS is TLS)")
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	// grpc-js-xds refuses a node without a locality, even an empty one.
	locality := map[string]string{}
	if zone != "" {
		locality["zone"] = zone
	}
	node := map[string]any{"id": nodeID, "locality": locality}
	return json.MarshalIndent(map[string]any{
		"xds_servers": []map[string]any{{"server_uri": server, "channel_creds": []any{creds}, "server_features": []string{"xds_v3"}}},
		"node":        node,
	}, "", "  ")
}
