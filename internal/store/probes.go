// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
	"github.com/svcreg/svcreg/internal/validation"
)

// Readiness probes (docs/health.md): an instance may carry a probe in the
// shape of a Kubernetes readinessProbe. Its status is written only by a
// prober's ReportProbeResult, and only on a transition; the endpoints
// derived from the instance are serving only while the probe passes.

// The probe defaults and bounds are Kubernetes' (core/v1 Probe).
const (
	defaultProbePeriod  = 10
	defaultProbeTimeout = 1
	defaultProbeSuccess = 1
	defaultProbeFailure = 3
	maxProbeSeconds     = 3600
	maxProbeThreshold   = 100
	maxProbeHeaders     = 16
	maxProbeMessage     = 256
)

// defaultProbe fills a probe's unset timing with Kubernetes' defaults.
func defaultProbe(p *svcregv1.Probe) {
	if p == nil {
		return
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = defaultProbePeriod
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = defaultProbeTimeout
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = defaultProbeSuccess
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = defaultProbeFailure
	}
	if h := p.GetHttpGet(); h != nil {
		if h.Path == "" {
			h.Path = "/"
		}
		if h.Scheme == "" {
			h.Scheme = "HTTP"
		}
	}
}

// validateProbe checks a defaulted probe against the instance's ports.
func validateProbe(p *svcregv1.Probe, ports []*svcregv1.InstancePort, field validation.Path) validation.ErrorList {
	if p == nil {
		return nil
	}
	var errs validation.ErrorList
	switch h := p.GetHandler().(type) {
	case *svcregv1.Probe_Grpc:
		errs = append(errs, validation.Invalids(field.Child("grpc").Child("port"), h.Grpc.GetPort(), validation.IsValidPortNum(int64(h.Grpc.GetPort())))...)
		if len(h.Grpc.GetService()) > 253 {
			errs = append(errs, validation.TooLong(field.Child("grpc").Child("service"), 253))
		}
	case *svcregv1.Probe_HttpGet:
		hf := field.Child("http_get")
		errs = append(errs, validateProbePort(h.HttpGet.GetPort(), ports, hf.Child("port"))...)
		if path := h.HttpGet.GetPath(); !strings.HasPrefix(path, "/") || len(path) > 2048 || strings.ContainsAny(path, " \r\n") {
			errs = append(errs, validation.Invalid(hf.Child("path"), path, "must start with '/', hold no spaces or line breaks, and be at most 2048 bytes"))
		}
		if s := h.HttpGet.GetScheme(); s != "HTTP" && s != "HTTPS" {
			errs = append(errs, validation.NotSupported(hf.Child("scheme"), s, []string{"HTTP", "HTTPS"}))
		}
		if n := len(h.HttpGet.GetHttpHeaders()); n > maxProbeHeaders {
			errs = append(errs, validation.TooMany(hf.Child("http_headers"), n, maxProbeHeaders))
		}
		for i, hdr := range h.HttpGet.GetHttpHeaders()[:min(len(h.HttpGet.GetHttpHeaders()), maxProbeHeaders)] {
			if !validHeaderName(hdr.GetName()) {
				errs = append(errs, validation.Invalid(hf.Child("http_headers").Index(i).Child("name"), hdr.GetName(), "must be an HTTP header name (RFC 9110 token)"))
			}
			if len(hdr.GetValue()) > 1024 || strings.ContainsAny(hdr.GetValue(), "\r\n\x00") {
				errs = append(errs, validation.Invalid(hf.Child("http_headers").Index(i).Child("value"), hdr.GetValue(), "must be at most 1024 bytes with no line breaks"))
			}
		}
	case *svcregv1.Probe_TcpSocket:
		errs = append(errs, validateProbePort(h.TcpSocket.GetPort(), ports, field.Child("tcp_socket").Child("port"))...)
	default:
		errs = append(errs, validation.Required(field, "exactly one of grpc, http_get and tcp_socket"))
	}
	for _, f := range []struct {
		name     string
		v, lo, h int32
	}{
		{"initial_delay_seconds", p.GetInitialDelaySeconds(), 0, maxProbeSeconds},
		{"period_seconds", p.GetPeriodSeconds(), 1, maxProbeSeconds},
		{"timeout_seconds", p.GetTimeoutSeconds(), 1, p.GetPeriodSeconds()},
		{"success_threshold", p.GetSuccessThreshold(), 1, maxProbeThreshold},
		{"failure_threshold", p.GetFailureThreshold(), 1, maxProbeThreshold},
	} {
		if f.v < f.lo || f.v > f.h {
			errs = append(errs, validation.Invalid(field.Child(f.name), f.v, fmt.Sprintf("must be between %d and %d, inclusive", f.lo, max(f.lo, f.h))))
		}
	}
	return errs
}

// validateProbePort checks an IntOrString port: a number, or the name of
// one of the instance's ports.
func validateProbePort(port string, ports []*svcregv1.InstancePort, field validation.Path) validation.ErrorList {
	if n, err := strconv.Atoi(port); err == nil {
		return validation.Invalids(field, n, validation.IsValidPortNum(int64(n)))
	}
	for _, p := range ports {
		if p.GetName() == port && port != "" {
			return nil
		}
	}
	return validation.ErrorList{validation.Invalid(field, port, "must be a port number or the name of one of the instance's ports")}
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// carryProbeStatus sets a written instance's probe status from what was
// stored: a probe that did not change keeps its status; a new or changed
// probe starts not ready (as a Kubernetes pod with a readinessProbe does);
// no probe, no status. Clients never write the status.
func carryProbeStatus(inst, old *svcregv1.Instance, now time.Time) {
	switch {
	case inst.GetReadinessProbe() == nil:
		inst.ProbeStatus = nil
	case old != nil && proto.Equal(old.GetReadinessProbe(), inst.GetReadinessProbe()):
		inst.ProbeStatus = old.GetProbeStatus()
	default:
		inst.ProbeStatus = &svcregv1.ProbeStatus{Message: "not probed yet", LastTransitionTime: timestamppb.New(now)}
	}
}

// prepareReportProbe is ReportProbeResult's stateless check.
func prepareReportProbe(r *svcregv1.ReportProbeResultRequest) validation.ErrorList {
	r.Namespace = meta.Namespace(r.Namespace)
	errs := ObjectRef(KindInstance, r.Namespace, r.GetName(), "namespace", "name")
	if r.GetUid() == "" {
		errs = append(errs, validation.Required("uid", "the uid of the instance probed"))
	}
	kind, who, _ := strings.Cut(r.GetProber(), "/")
	if (kind != "agent" && kind != "server") || who == "" || len(r.GetProber()) > 260 {
		errs = append(errs, validation.Invalid("prober", r.GetProber(), `must be "agent/NODE" or "server/ID"`))
	}
	if len(r.GetMessage()) > maxProbeMessage {
		errs = append(errs, validation.TooLong("message", maxProbeMessage))
	}
	return errs
}

// probedInstanceTxn is the instance a report is about, or why the report
// no longer applies.
func probedInstanceTxn(txn *memdb.Txn, r *svcregv1.ReportProbeResultRequest) (*svcregv1.Instance, error) {
	old, err := instanceTxn(txn, r.GetNamespace(), r.GetName())
	if err != nil {
		return nil, err
	}
	if old.GetUid() != r.GetUid() || old.GetReadinessProbe() == nil {
		return nil, &Error{ErrFailedPrecondition, fmt.Sprintf("instance %q in namespace %q changed since it was probed (another uid, or no probe): probe it again", r.GetName(), r.GetNamespace())}
	}
	return old, nil
}

// reportProbeTxn records a probe's transition. A report that changes
// nothing (a duplicate, a late retry) writes nothing.
func (s *Store) reportProbeTxn(ctx *applyCtx, r *svcregv1.ReportProbeResultRequest) (*Result, error) {
	old, err := probedInstanceTxn(ctx.txn.Txn, r)
	if err != nil {
		return nil, err
	}
	st := old.GetProbeStatus()
	if st.GetReady() == r.GetReady() && st.GetProber() == r.GetProber() {
		return &Result{Instance: old}, nil
	}
	inst := proto.Clone(old).(*svcregv1.Instance)
	inst.ProbeStatus = &svcregv1.ProbeStatus{Ready: r.GetReady(), Prober: r.GetProber(), Message: r.GetMessage(), LastTransitionTime: st.GetLastTransitionTime()}
	if st.GetReady() != r.GetReady() || st.GetLastTransitionTime() == nil {
		inst.ProbeStatus.LastTransitionTime = timestamppb.New(ctx.time)
	}
	inst.ResourceVersion, inst.Etag = ctx.rev, Etag(ctx.rev)
	if err := ctx.txn.Replace(tableInstances, old, inst); err != nil {
		return nil, err
	}
	if err := syncInstanceEndpointsTxn(ctx.txn, ctx.rev, inst.GetNamespace(), inst.GetName(), old, inst); err != nil {
		return nil, err
	}
	return &Result{Instance: inst}, nil
}
