// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package resolver

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/resolver"

	"github.com/svcreg/svcreg/internal/validation"
)

// Target is a parsed svcreg target:
//
//	svcreg:///<service>.<namespace>:<port>
//	svcreg://<registry-host:port>/<service>.<namespace>:<port>
//
// The namespace defaults to "default"; the port (a service port name or
// number) may be left out when the service has one port.
type Target struct {
	Registry  string // the authority; empty: SVCREG_ADDR, else 127.0.0.1:7400
	Service   string
	Namespace string
	PortName  string // a named port, or
	Port      int32  // a port number; both empty: the service's only port
}

func (t Target) String() string {
	s := Scheme + "://" + t.Registry + "/" + t.Service + "." + t.Namespace
	switch {
	case t.PortName != "":
		s += ":" + t.PortName
	case t.Port != 0:
		s += ":" + strconv.Itoa(int(t.Port))
	}
	return s
}

// ParseTarget parses a target's authority and endpoint (the URL path).
func ParseTarget(authority, endpoint string) (Target, error) {
	bad := func(format string, args ...any) (Target, error) {
		return Target{}, fmt.Errorf("svcreg: bad target %q: %s (want svcreg:///<service>.<namespace>:<port>)", Scheme+"://"+authority+"/"+endpoint, fmt.Sprintf(format, args...))
	}
	t := Target{Registry: authority, Namespace: "default"}
	name := endpoint
	if i := strings.LastIndexByte(endpoint, ':'); i >= 0 {
		name = endpoint[:i]
		port := endpoint[i+1:]
		if port == "" {
			return bad("empty port after ':'")
		}
		if n, err := strconv.Atoi(port); err == nil {
			if msgs := validation.IsValidPortNum(int64(n)); msgs != nil {
				return bad("port %d: %s", n, msgs[0])
			}
			t.Port = int32(n)
		} else if msgs := validation.IsDNS1123Label(port); msgs != nil {
			return bad("port name %q: %s", port, msgs[0])
		} else {
			t.PortName = port
		}
	}
	svc, ns, hasNS := strings.Cut(name, ".")
	if hasNS {
		t.Namespace = ns
	}
	if svc == "" {
		return bad("no service name")
	}
	if msgs := validation.IsDNS1035Label(svc); msgs != nil {
		return bad("service name %q: %s", svc, msgs[0])
	}
	if msgs := validation.IsDNS1123Label(t.Namespace); msgs != nil {
		return bad("namespace %q: %s", t.Namespace, msgs[0])
	}
	t.Service = svc
	return t, nil
}

func parseGRPCTarget(target resolver.Target) (Target, error) {
	return ParseTarget(target.URL.Host, target.Endpoint())
}
