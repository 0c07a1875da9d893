// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package console

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/manifest"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/spelling"
)

// Output formats of get, as kubectl's -o.
const (
	OutputTable = ""
	OutputWide  = "wide"
	OutputYAML  = "yaml"
	OutputJSON  = "json"
	OutputName  = "name"
)

// ParseOutput checks an -o value.
func ParseOutput(s string) (string, error) {
	switch s {
	case OutputTable, OutputWide, OutputYAML, OutputJSON, OutputName:
		return s, nil
	}
	if err := parseTemplateOutput(s); err != errNotTemplate {
		return s, err
	}
	return "", fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: custom-columns, json, jsonpath, name, wide, yaml", s)
}

// snapshot is what get and watch print: services with their endpoints,
// or instances.
type snapshot struct {
	kind      meta.Kind
	services  []*svcregv1.Service
	endpoints [][]*svcregv1.Endpoint // per service
	instances []*svcregv1.Instance
}

func (c *Console) read(ctx context.Context, kind meta.Kind, name string, s Scope) (*snapshot, error) {
	snap := &snapshot{kind: kind}
	var err error
	switch kind {
	case Services, Endpoints:
		if name != "" && !s.AllNamespaces {
			var resp *svcregv1.GetServiceResponse
			if resp, err = c.API.GetService(ctx, &svcregv1.GetServiceRequest{Namespace: s.namespace(), Name: name}); err != nil {
				return nil, notFoundAs(err, kind, name)
			}
			snap.services = []*svcregv1.Service{resp.GetService()}
		} else if snap.services, err = c.listServices(ctx, s); err != nil {
			return nil, err
		}
		snap.services = onlyNamed(snap.services, name)
		if kind == Endpoints {
			snap.services = withoutExternalNames(snap.services)
		}
		snap.endpoints, err = c.endpointsOf(ctx, snap.services)
	case Instances:
		if name != "" && !s.AllNamespaces {
			var resp *svcregv1.GetInstanceResponse
			if resp, err = c.API.GetInstance(ctx, &svcregv1.GetInstanceRequest{Namespace: s.namespace(), Name: name}); err != nil {
				return nil, notFoundAs(err, kind, name)
			}
			snap.instances = []*svcregv1.Instance{resp.GetInstance()}
		} else if snap.instances, err = c.listInstances(ctx, s); err != nil {
			return nil, err
		}
		snap.instances = onlyNamed(snap.instances, name)
	}
	if err == nil && name != "" && len(snap.services)+len(snap.instances) == 0 {
		err = status.Errorf(codes.NotFound, "%s %q not found", kind.Resource(), name)
	}
	return snap, err
}

// notFoundAs words a NotFound as kubectl does: services "web" not found.
func notFoundAs(err error, kind meta.Kind, name string) error {
	if isNotFound(err) {
		return status.Errorf(codes.NotFound, "%s %q not found", kind.Resource(), name)
	}
	return err
}

func withoutExternalNames(svcs []*svcregv1.Service) []*svcregv1.Service {
	var out []*svcregv1.Service
	for _, s := range svcs {
		if s.GetType() != svcregv1.ServiceType_SERVICE_TYPE_EXTERNAL_NAME {
			out = append(out, s)
		}
	}
	return out
}

// Get prints services, instances or endpoints (name empty: all in scope).
func (c *Console) Get(ctx context.Context, kind meta.Kind, name string, s Scope, output string) error {
	snap, err := c.read(ctx, kind, name, s)
	if err != nil {
		return err
	}
	return c.print(snap, s, output, name == "")
}

func (c *Console) print(snap *snapshot, s Scope, output string, list bool) error {
	switch output {
	case OutputYAML, OutputJSON:
		return manifest.Encode(c.Out, snap.documents(), list, output == OutputJSON)
	case OutputName:
		for _, d := range snap.documents() {
			fmt.Fprintf(c.Out, "%s/%s\n", singular(snap.kind), d.(interface{ GetName() string }).GetName())
		}
		return nil
	}
	if parseTemplateOutput(output) != errNotTemplate {
		return printTemplate(c.Out, output, snap.documents(), list)
	}
	if len(snap.services)+len(snap.instances) == 0 {
		if s.AllNamespaces {
			fmt.Fprintln(c.Err, "No resources found")
		} else {
			fmt.Fprintf(c.Err, "No resources found in %s namespace.\n", s.namespace())
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.Out, 0, 8, 3, ' ', 0)
	c.table(tw, snap, s.AllNamespaces, output == OutputWide)
	return tw.Flush()
}

// documents are the objects as get -o yaml|json writes them.
func (snap *snapshot) documents() []proto.Message {
	var out []proto.Message
	switch snap.kind {
	case Services:
		for _, s := range snap.services {
			out = append(out, s)
		}
	case Instances:
		for _, i := range snap.instances {
			out = append(out, i)
		}
	case Endpoints:
		for i, s := range snap.services {
			out = append(out, &svcregv1.ReplaceEndpointsRequest{Namespace: s.GetNamespace(), Service: s.GetName(), Endpoints: snap.endpoints[i]})
		}
	}
	return out
}

func (c *Console) table(w io.Writer, snap *snapshot, allNamespaces, wide bool) {
	row := func(cols ...string) {
		fmt.Fprintln(w, strings.Join(cols, "\t"))
	}
	ns := func(namespace string, cols ...string) []string {
		if allNamespaces {
			return append([]string{namespace}, cols...)
		}
		return cols
	}
	now := c.Now()
	switch snap.kind {
	case Services:
		head := ns("NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "PORTS", "ENDPOINTS", "SCHEDULER", "AGE")
		if wide {
			head = append(head, "SELECTOR", "EXTERNAL-NAME")
		}
		if c.ShowLabels {
			head = append(head, "LABELS")
		}
		row(head...)
		for i, svc := range snap.services {
			cols := ns(svc.GetNamespace(), svc.GetName(), serviceType(svc.GetType()), orNone(svc.GetClusterIp()), servicePorts(svc),
				readyOfTotal(snap.endpoints[i]), svc.GetScheduler(), age(now, timeOf(svc.GetCreateTime())))
			if wide {
				cols = append(cols, orNone(labelsText(svc.GetSelector())), orNone(svc.GetExternalName()))
			}
			if c.ShowLabels {
				cols = append(cols, orNone(labelsText(svc.GetLabels())))
			}
			row(cols...)
		}
	case Endpoints:
		row(ns("NAMESPACE", "NAME", "ENDPOINTS", "READY")...)
		for i, svc := range snap.services {
			row(ns(svc.GetNamespace(), svc.GetName(), endpointAddresses(snap.endpoints[i], wide), readyOfTotal(snap.endpoints[i]))...)
		}
	case Instances:
		head := ns("NAMESPACE", "NAME", "IP", "PORTS", "STATUS", "WEIGHT", "LEASE", "AGE")
		if wide {
			head = append(head, "ZONE", "NODE")
		}
		if wide || c.ShowLabels {
			head = append(head, "LABELS")
		}
		row(head...)
		for _, inst := range snap.instances {
			cols := ns(inst.GetNamespace(), inst.GetName(), inst.GetIp(), instancePorts(inst), instanceStatus(inst),
				weight(inst.Weight), leaseLeft(now, inst), age(now, timeOf(inst.GetCreateTime())))
			if wide {
				cols = append(cols, orNone(inst.GetZone()), orNone(inst.GetNode()))
			}
			if wide || c.ShowLabels {
				cols = append(cols, orNone(labelsText(inst.GetLabels())))
			}
			row(cols...)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func serviceType(t svcregv1.ServiceType) string { return spelling.Of(t) }

// protocol is a port's protocol as kubectl prints it (TCP when unset).
func protocol(p svcregv1.Protocol) string { return strings.ToUpper(spelling.Protocol(p)) }

// servicePorts as kubectl: 80/TCP,443:30443/TCP.
func servicePorts(svc *svcregv1.Service) string {
	var parts []string
	for _, p := range svc.GetPorts() {
		s := fmt.Sprint(p.GetPort())
		if p.GetNodePort() != 0 {
			s += fmt.Sprintf(":%d", p.GetNodePort())
		}
		parts = append(parts, s+"/"+protocol(p.GetProtocol()))
	}
	return orNone(strings.Join(parts, ","))
}

func instancePorts(inst *svcregv1.Instance) string {
	var parts []string
	for _, p := range inst.GetPorts() {
		s := fmt.Sprintf("%d/%s", p.GetPort(), protocol(p.GetProtocol()))
		if p.GetName() != "" {
			s = p.GetName() + ":" + s
		}
		parts = append(parts, s)
	}
	return orNone(strings.Join(parts, ","))
}

func readyOfTotal(eps []*svcregv1.Endpoint) string {
	ready := 0
	for _, ep := range eps {
		if ep.GetReady() {
			ready++
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(eps))
}

// endpointAddresses as kubectl's get endpoints: the ready addresses, the
// first three unless wide.
func endpointAddresses(eps []*svcregv1.Endpoint, wide bool) string {
	var addrs []string
	for _, ep := range eps {
		if !ep.GetReady() {
			continue
		}
		if len(ep.GetPorts()) == 0 {
			addrs = append(addrs, ep.GetIp())
		}
		for _, p := range ep.GetPorts() {
			addrs = append(addrs, net.JoinHostPort(ep.GetIp(), strconv.Itoa(int(p.GetPort()))))
		}
	}
	if len(addrs) == 0 {
		return "<none>"
	}
	if !wide && len(addrs) > 3 {
		return strings.Join(addrs[:3], ",") + fmt.Sprintf(" + %d more...", len(addrs)-3)
	}
	return strings.Join(addrs, ",")
}

// instanceStatus: Terminating, Ready or NotReady (an instance is ready
// unless it says otherwise).
func instanceStatus(inst *svcregv1.Instance) string {
	switch {
	case inst.GetTerminating():
		return "Terminating"
	case inst.GetLeaseLapsedTime() != nil:
		return "LeaseLapsed" // held by self-preservation
	case inst.Ready != nil && !inst.GetReady():
		return "NotReady"
	case inst.GetReadinessProbe() != nil && !inst.GetProbeStatus().GetReady():
		return "ProbeFailing"
	}
	return "Ready"
}

func labelsText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

// weight: an instance without one weighs 1 (docs/ipvs.md).
func weight(w *uint32) string {
	if w == nil {
		return "1"
	}
	return strconv.Itoa(int(*w))
}

// leaseLeft is the time until the instance's lease lapses unless renewed.
func leaseLeft(now time.Time, inst *svcregv1.Instance) string {
	if inst.GetTtlSeconds() <= 0 || inst.GetLeaseExpireTime() == nil {
		return "<none>"
	}
	left := inst.GetLeaseExpireTime().AsTime().Sub(now).Round(time.Second)
	return max(left, 0).String()
}
