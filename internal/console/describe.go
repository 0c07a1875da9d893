// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package console

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/labels"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/servicemodel"
	"github.com/svcreg/svcreg/internal/spelling"
)

// Describe prints one service (its spec, its endpoints with their
// conditions, its recent changes) or one instance.
func (c *Console) Describe(ctx context.Context, kind meta.Kind, name string, s Scope) error {
	if kind == Endpoints {
		kind = Services
	}
	snap, err := c.read(ctx, kind, name, Scope{Namespace: s.Namespace})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.Out, 0, 8, 2, ' ', 0)
	if kind == Instances {
		c.describeInstance(tw, snap.instances[0])
		return tw.Flush()
	}
	svc := snap.services[0]
	c.describeService(tw, svc, snap.endpoints[0])
	changes, err := c.recentChanges(ctx, svc)
	if err != nil {
		fmt.Fprintf(tw, "Recent changes:\t<unavailable: %s>\n", ErrorText(err))
		return tw.Flush()
	}
	if len(changes) == 0 {
		fmt.Fprintln(tw, "Recent changes:\t<none in the watch history>")
		return tw.Flush()
	}
	fmt.Fprintln(tw, "Recent changes:")
	c.nested(tw, func(t io.Writer) {
		fmt.Fprintln(t, "  REVISION\tEVENT\tOBJECT\tSTATE")
		for _, ev := range changes {
			fmt.Fprintf(t, "  %d\t%s\t%s\t%s\n", ev.GetResourceVersion(), eventName(ev.GetType()), eventObject(ev), eventState(ev))
		}
	})
	return nil
}

func (c *Console) describeService(w *tabwriter.Writer, svc *svcregv1.Service, eps []*svcregv1.Endpoint) {
	field := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	field("Name", svc.GetName())
	field("Namespace", svc.GetNamespace())
	field("Labels", orNone(labelsText(svc.GetLabels())))
	field("Annotations", orNone(labelsText(svc.GetAnnotations())))
	field("Selector", orNone(labelsText(svc.GetSelector())))
	field("Type", serviceType(svc.GetType()))
	field("Cluster IP", orNone(svc.GetClusterIp()))
	if svc.GetExternalName() != "" {
		field("External Name", svc.GetExternalName())
	}
	for _, p := range svc.GetPorts() {
		port := fmt.Sprintf("%s %d/%s -> %s", orNone(p.GetName()), p.GetPort(), protocol(p.GetProtocol()), p.GetTargetPort())
		if p.GetNodePort() != 0 {
			port += fmt.Sprintf(", node port %d", p.GetNodePort())
		}
		field("Port", port)
	}
	affinity := "None"
	if svc.GetSessionAffinity() == svcregv1.SessionAffinity_SESSION_AFFINITY_CLIENT_IP {
		affinity = fmt.Sprintf("ClientIP (%ds)", svc.GetSessionAffinityTimeoutSeconds())
	}
	field("Session Affinity", affinity)
	sched := svc.GetScheduler()
	if o := svc.GetSchedulerOptions(); o != nil {
		sched += " (" + strings.TrimSpace(fmt.Sprintf("hash_key=%s secondary_key=%s fallback=%v persistence=%ds", o.GetHashKey(), o.GetSecondaryKey(), o.GetFallback(), o.GetPersistenceTimeoutSeconds())) + ")"
	}
	field("Scheduler", sched)
	if svc.GetPublishNotReadyAddresses() {
		field("Publish Not Ready", "true")
	}
	if td := svc.GetTrafficDistribution(); td != svcregv1.TrafficDistribution_TRAFFIC_DISTRIBUTION_UNSPECIFIED {
		field("Traffic Distribution", spelling.Of(td)+zoneReadiness(svc, eps))
	}
	if svc.GetInternalTrafficPolicy() == svcregv1.InternalTrafficPolicy_INTERNAL_TRAFFIC_POLICY_LOCAL {
		field("Internal Traffic Policy", map[bool]string{true: "Local (falls back to the cluster's)", false: "Local"}[svc.GetLocalFallback()])
	}
	field("Created", created(c.Now(), timeOf(svc.GetCreateTime())))
	field("Resource Version", fmt.Sprint(svc.GetResourceVersion()))
	if len(eps) == 0 {
		field("Endpoints", "<none>")
		return
	}
	field("Endpoints", readyOfTotal(eps)+" ready")
	c.nested(w, func(t io.Writer) {
		fmt.Fprintln(t, "  INSTANCE\tADDRESS\tREADY\tSERVING\tTERMINATING\tWEIGHT\tZONE")
		sortEndpoints(eps)
		for _, ep := range eps {
			fmt.Fprintf(t, "  %s\t%s\t%v\t%v\t%v\t%s\t%s\n", ep.GetInstance(), endpointAddresses([]*svcregv1.Endpoint{withReady(ep)}, true),
				ep.GetReady(), ep.GetServing(), ep.GetTerminating(), weight(ep.Weight), orNone(ep.GetZone()))
		}
	})
}

// nested prints a table inside a description: the description's fields
// so far are flushed first, so the two align on their own.
func (c *Console) nested(w *tabwriter.Writer, table func(io.Writer)) {
	w.Flush()
	t := tabwriter.NewWriter(c.Out, 0, 8, 2, ' ', 0)
	table(t)
	t.Flush()
}

// withReady shows any endpoint's addresses through endpointAddresses.
func withReady(ep *svcregv1.Endpoint) *svcregv1.Endpoint {
	t := true
	return &svcregv1.Endpoint{Ip: ep.GetIp(), Ports: ep.GetPorts(), Ready: &t}
}

func (c *Console) describeInstance(w io.Writer, inst *svcregv1.Instance) {
	field := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	now := c.Now()
	field("Name", inst.GetName())
	field("Namespace", inst.GetNamespace())
	field("Labels", orNone(labelsText(inst.GetLabels())))
	field("IP", inst.GetIp())
	field("Ports", instancePorts(inst))
	field("Status", instanceStatus(inst))
	if p := inst.GetReadinessProbe(); p != nil {
		field("Readiness Probe", probeText(p))
		st := inst.GetProbeStatus()
		field("Probe Status", fmt.Sprintf("%s by %s: %s (since %s)", map[bool]string{true: "passing", false: "failing"}[st.GetReady()],
			orNone(st.GetProber()), orNone(st.GetMessage()), created(now, timeOf(st.GetLastTransitionTime()))))
	}
	field("Weight", weight(inst.Weight))
	if inst.UpperThreshold != nil || inst.LowerThreshold != nil {
		field("Thresholds", fmt.Sprintf("upper %d, lower %d", inst.GetUpperThreshold(), inst.GetLowerThreshold()))
	}
	field("Zone", orNone(inst.GetZone()))
	field("Node", orNone(inst.GetNode()))
	if inst.GetHostname() != "" {
		field("Hostname", inst.GetHostname()+"."+orNone(inst.GetSubdomain()))
	}
	if t := inst.GetLeaseLapsedTime(); t != nil {
		field("Lease", fmt.Sprintf("%ds TTL, lapsed %s ago: kept by self-preservation until it renews or the hold ends", inst.GetTtlSeconds(), age(now, timeOf(t))))
	} else if inst.GetTtlSeconds() > 0 {
		field("Lease", fmt.Sprintf("%ds TTL, lapses in %s unless renewed", inst.GetTtlSeconds(), leaseLeft(now, inst)))
	} else {
		field("Lease", "<none>")
	}
	field("Owner", orNone(inst.GetOwner()))
	field("Created", created(now, timeOf(inst.GetCreateTime())))
	field("Resource Version", fmt.Sprint(inst.GetResourceVersion()))
}

// probeText is a probe as kubectl describe prints one: "http-get
// http://:http/healthz delay=0s timeout=1s period=10s #success=1
// #failure=3".
func probeText(p *svcregv1.Probe) string {
	var what string
	switch h := p.GetHandler().(type) {
	case *svcregv1.Probe_Grpc:
		what = fmt.Sprintf("grpc <pod>:%d %s", h.Grpc.GetPort(), h.Grpc.GetService())
	case *svcregv1.Probe_HttpGet:
		what = fmt.Sprintf("http-get %s://:%s%s", strings.ToLower(h.HttpGet.GetScheme()), h.HttpGet.GetPort(), h.HttpGet.GetPath())
	case *svcregv1.Probe_TcpSocket:
		what = "tcp-socket :" + h.TcpSocket.GetPort()
	}
	return fmt.Sprintf("%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", strings.TrimSpace(what), p.GetInitialDelaySeconds(),
		p.GetTimeoutSeconds(), p.GetPeriodSeconds(), p.GetSuccessThreshold(), p.GetFailureThreshold())
}

// zoneReadiness says, per zone, how many endpoints are ready, and why a
// zone's clients cannot keep the service's traffic preference
// (servicemodel.ZonesWithoutPreference; docs/health.md, "Topology").
func zoneReadiness(svc *svcregv1.Service, eps []*svcregv1.Endpoint) string {
	ready, total := map[string]int{}, map[string]int{}
	for _, ep := range eps {
		total[ep.GetZone()]++
		if ep.GetReady() && ep.GetWeight() > 0 {
			ready[ep.GetZone()]++
		}
	}
	without := servicemodel.ZonesWithoutPreference(svc, eps)
	var parts []string
	for _, z := range slices.Sorted(maps.Keys(total)) {
		p := fmt.Sprintf("%s %d/%d ready", orNone(z), ready[z], total[z])
		if why, ok := without[z]; ok {
			p += " (" + why + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; zones: " + strings.Join(parts, ", ")
}

func created(now, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), age(now, t))
}

// historyReach is how far back describe looks for changes, in revisions.
const historyReach = 1000

// maxChanges bounds the changes describe shows (the latest).
const maxChanges = 10

// recentChanges replays the watch history since a recent revision (the
// oldest the server still holds, found by halving) up to the revision the
// service was read at, keeping the events of the service and of the
// instances its selector matches.
func (c *Console) recentChanges(ctx context.Context, svc *svcregv1.Service) ([]*svcregv1.WatchResponse, error) {
	head, err := c.API.ListServices(ctx, &svcregv1.ListServicesRequest{Namespace: svc.GetNamespace(), PageSize: 1})
	if err != nil {
		return nil, err
	}
	upTo := head.GetResourceVersion()
	from := max(upTo-historyReach, 1)
	for range 12 {
		if from >= upTo {
			return nil, nil
		}
		changes, err := c.replay(ctx, svc, from, upTo)
		if status.Code(err) == codes.OutOfRange {
			from += (upTo - from + 1) / 2 // older than the history: look less far back
			continue
		}
		return changes, err
	}
	return nil, nil
}

// replayWait bounds a replay that ends in revisions this watch does not
// see (the last writes were endpoints of another service).
const replayWait = 2 * time.Second

func (c *Console) replay(ctx context.Context, svc *svcregv1.Service, from, upTo int64) ([]*svcregv1.WatchResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, replayWait)
	defer cancel()
	stream, err := c.API.Watch(ctx, &svcregv1.WatchRequest{Namespace: svc.GetNamespace(), ResourceVersion: from})
	if err != nil {
		return nil, err
	}
	var out []*svcregv1.WatchResponse
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil && len(out) > 0 || status.Code(err) == codes.DeadlineExceeded {
				return out, nil
			}
			return out, err
		}
		if ev.GetResourceVersion() > upTo {
			return out, nil
		}
		if concerns(svc, ev) {
			out = append(out, ev)
			if len(out) > maxChanges {
				out = out[1:]
			}
		}
		if ev.GetResourceVersion() == upTo {
			return out, nil
		}
	}
}

func concerns(svc *svcregv1.Service, ev *svcregv1.WatchResponse) bool {
	if s := ev.GetService(); s != nil {
		return s.GetName() == svc.GetName()
	}
	inst := ev.GetInstance()
	return inst != nil && len(svc.GetSelector()) > 0 && labels.MatchesMap(svc.GetSelector(), inst.GetLabels())
}

func eventName(t svcregv1.EventType) string {
	return strings.TrimPrefix(t.String(), "EVENT_TYPE_")
}

func eventObject(ev *svcregv1.WatchResponse) string {
	if s := ev.GetService(); s != nil {
		return "service/" + s.GetName()
	}
	return "instance/" + ev.GetInstance().GetName()
}

func eventState(ev *svcregv1.WatchResponse) string {
	if s := ev.GetService(); s != nil {
		return fmt.Sprintf("%s %s %s", serviceType(s.GetType()), servicePorts(s), s.GetScheduler())
	}
	inst := ev.GetInstance()
	return fmt.Sprintf("%s %s %s weight %s", instanceStatus(inst), inst.GetIp(), instancePorts(inst), weight(inst.Weight))
}
