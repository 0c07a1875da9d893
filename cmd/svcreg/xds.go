package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/svcreg/svcreg/internal/meta"
)

// xdsCmd is `svcreg xds bootstrap`: the bootstrap a proxyless gRPC client
// of any language reads (GRPC_XDS_BOOTSTRAP names a file holding it,
// GRPC_XDS_BOOTSTRAP_CONFIG holds it) to use the registry as its xDS
// server (gRFC A27).
func xdsCmd(args []string) error {
	if len(args) == 0 || args[0] != "bootstrap" {
		return errors.New("usage: svcreg xds bootstrap [--server ADDR] [--node-id ID] [--zone ZONE] [--cacert FILE [--cert FILE --key FILE]]")
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
	node := map[string]any{"id": nodeID}
	if zone != "" {
		node["locality"] = map[string]string{"zone": zone}
	}
	return json.MarshalIndent(map[string]any{
		"xds_servers": []map[string]any{{"server_uri": server, "channel_creds": []any{creds}, "server_features": []string{"xds_v3"}}},
		"node":        node,
	}, "", "  ")
}
