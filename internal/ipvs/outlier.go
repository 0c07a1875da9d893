// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// OutlierDetection ejects backends whose recent calls fail, as gRFC A50
// (and Envoy's outlier detection) define it: every Interval, the calls
// of the last interval are counted per backend; a backend whose success
// rate is far below the others' (success-rate ejection) or whose failure
// share is above a threshold (failure-percentage ejection) is ejected for
// BaseEjectionTime times the number of times it was ejected in a row (at
// most MaxEjectionTime), never more than MaxEjectionPercent of the
// backends at once. The field names and defaults are A50's, so the same
// JSON configures grpc-go's outlier_detection policy and this one.
type OutlierDetection struct {
	Interval           Duration                   `json:"interval,omitempty"`
	BaseEjectionTime   Duration                   `json:"baseEjectionTime,omitempty"`
	MaxEjectionTime    Duration                   `json:"maxEjectionTime,omitempty"`
	MaxEjectionPercent uint32                     `json:"maxEjectionPercent,omitempty"`
	SuccessRate        *SuccessRateEjection       `json:"successRateEjection,omitempty"`
	FailurePercentage  *FailurePercentageEjection `json:"failurePercentageEjection,omitempty"`
}

// SuccessRateEjection ejects a backend whose success rate is below the
// mean by StdevFactor/1000 standard deviations.
type SuccessRateEjection struct {
	StdevFactor           uint32 `json:"stdevFactor,omitempty"`
	EnforcementPercentage uint32 `json:"enforcementPercentage,omitempty"`
	MinimumHosts          uint32 `json:"minimumHosts,omitempty"`
	RequestVolume         uint32 `json:"requestVolume,omitempty"`
}

// FailurePercentageEjection ejects a backend more than Threshold percent
// of whose calls failed.
type FailurePercentageEjection struct {
	Threshold             uint32 `json:"threshold,omitempty"`
	EnforcementPercentage uint32 `json:"enforcementPercentage,omitempty"`
	MinimumHosts          uint32 `json:"minimumHosts,omitempty"`
	RequestVolume         uint32 `json:"requestVolume,omitempty"`
}

// A50's defaults.
const (
	defaultODInterval        = 10 * time.Second
	defaultODBaseEjection    = 30 * time.Second
	defaultODMaxEjection     = 300 * time.Second
	defaultODMaxPercent      = 10
	defaultSRStdevFactor     = 1900
	defaultSRMinimumHosts    = 5
	defaultSRRequestVolume   = 100
	defaultFPThreshold       = 85
	defaultFPMinimumHosts    = 5
	defaultFPRequestVolume   = 50
	defaultEnforcementPerCnt = 100
)

// WithDefaults is o with A50's defaults in its unset fields.
func (o OutlierDetection) WithDefaults() OutlierDetection {
	if o.SuccessRate != nil {
		sr := *o.SuccessRate
		o.SuccessRate = &sr
	}
	if o.FailurePercentage != nil {
		fp := *o.FailurePercentage
		o.FailurePercentage = &fp
	}
	o.withDefaults()
	return o
}

// withDefaults fills unset fields with A50's defaults.
func (o *OutlierDetection) withDefaults() {
	if o.Interval == 0 {
		o.Interval = Duration(defaultODInterval)
	}
	if o.BaseEjectionTime == 0 {
		o.BaseEjectionTime = Duration(defaultODBaseEjection)
	}
	if o.MaxEjectionTime == 0 {
		o.MaxEjectionTime = Duration(max(defaultODMaxEjection, time.Duration(o.BaseEjectionTime)))
	}
	if o.MaxEjectionPercent == 0 {
		o.MaxEjectionPercent = defaultODMaxPercent
	}
	if s := o.SuccessRate; s != nil {
		s.StdevFactor = or(s.StdevFactor, defaultSRStdevFactor)
		s.EnforcementPercentage = or(s.EnforcementPercentage, defaultEnforcementPerCnt)
		s.MinimumHosts = or(s.MinimumHosts, defaultSRMinimumHosts)
		s.RequestVolume = or(s.RequestVolume, defaultSRRequestVolume)
	}
	if f := o.FailurePercentage; f != nil {
		f.Threshold = or(f.Threshold, defaultFPThreshold)
		f.EnforcementPercentage = or(f.EnforcementPercentage, defaultEnforcementPerCnt)
		f.MinimumHosts = or(f.MinimumHosts, defaultFPMinimumHosts)
		f.RequestVolume = or(f.RequestVolume, defaultFPRequestVolume)
	}
}

func or(v, def uint32) uint32 {
	if v == 0 {
		return def
	}
	return v
}

func (o *OutlierDetection) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("ipvs: invalid config: outlierDetection.%s: %s", field, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Interval < Duration(100*time.Millisecond):
		return bad("interval", "must be at least 100ms")
	case o.BaseEjectionTime < 0 || o.MaxEjectionTime < o.BaseEjectionTime:
		return bad("maxEjectionTime", "must be at least baseEjectionTime")
	case o.MaxEjectionPercent > 100:
		return bad("maxEjectionPercent", "must be at most 100")
	case o.SuccessRate != nil && o.SuccessRate.EnforcementPercentage > 100:
		return bad("successRateEjection.enforcementPercentage", "must be at most 100")
	case o.FailurePercentage != nil && (o.FailurePercentage.Threshold > 100 || o.FailurePercentage.EnforcementPercentage > 100):
		return bad("failurePercentageEjection", "threshold and enforcementPercentage must be at most 100")
	}
	return nil
}

// Outliers runs outlier detection over a set of backends: adapters record
// each call's outcome on the backend's OutlierHost and call Evaluate every
// Interval; Ejected backends are left out of the pickers they build.
type Outliers struct {
	cfg OutlierDetection

	mu    sync.Mutex // guards hosts and each host's ejection state
	hosts map[string]*OutlierHost
}

// OutlierHost counts one backend's calls. Record is lock-free.
type OutlierHost struct {
	successes, failures atomic.Int64
	// Under Outliers.mu:
	ejectedAt  time.Time // zero: not ejected
	multiplier int64
}

// Record counts one call's outcome.
func (h *OutlierHost) Record(ok bool) {
	if ok {
		h.successes.Add(1)
	} else {
		h.failures.Add(1)
	}
}

// outlierRand is the enforcement draw (tests replace it).
var outlierRand = func() uint32 { return rand.Uint32N(100) }

// NewOutliers returns outlier detection with cfg (defaults filled in).
func NewOutliers(cfg OutlierDetection) *Outliers {
	cfg.withDefaults()
	return &Outliers{cfg: cfg, hosts: map[string]*OutlierHost{}}
}

// Interval is how often Evaluate is due.
func (o *Outliers) Interval() time.Duration { return time.Duration(o.cfg.Interval) }

// Host is the counter of the backend at addr (created on first use).
func (o *Outliers) Host(addr string) *OutlierHost {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.hosts[addr]
	if h == nil {
		h = &OutlierHost{}
		o.hosts[addr] = h
	}
	return h
}

// Ejected reports whether the backend at addr is ejected now.
func (o *Outliers) Ejected(addr string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.hosts[addr]
	return h != nil && !h.ejectedAt.IsZero()
}

// Evaluate runs one interval over the backends at addrs (the others are
// forgotten) and reports whether the ejected set changed.
func (o *Outliers) Evaluate(now time.Time, addrs []string) (changed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	samples := o.sampleLocked(addrs)
	e := ejection{cfg: &o.cfg, now: now, hosts: len(o.hosts)}
	for _, h := range o.hosts {
		if !h.ejectedAt.IsZero() {
			e.ejected++
		}
	}
	if sr := o.cfg.SuccessRate; sr != nil {
		e.bySuccessRate(sr, samples)
	}
	if fp := o.cfg.FailurePercentage; fp != nil {
		e.byFailurePercentage(fp, samples)
	}
	return o.returnLocked(now) || e.changed
}

// outlierSample is one backend's calls over the interval.
type outlierSample struct {
	h                   *OutlierHost
	successes, failures int64
}

func (s outlierSample) calls() int64 { return s.successes + s.failures }

// sampleLocked takes and resets the counters of the backends at addrs
// and forgets the others.
func (o *Outliers) sampleLocked(addrs []string) []outlierSample {
	live := make(map[string]*OutlierHost, len(addrs))
	samples := make([]outlierSample, 0, len(addrs))
	for _, a := range addrs {
		h := o.hosts[a]
		if h == nil {
			h = &OutlierHost{}
		}
		live[a] = h
		samples = append(samples, outlierSample{h, h.successes.Swap(0), h.failures.Swap(0)})
	}
	o.hosts = live
	return samples
}

// ejection is one interval's ejecting.
type ejection struct {
	cfg            *OutlierDetection
	now            time.Time
	hosts, ejected int
	changed        bool
}

func (e *ejection) eject(h *OutlierHost, percent uint32) {
	// gRFC A50: no more once max_ejection_percent of the backends are out
	// (so one may go even when that share is under one backend).
	if e.ejected*100 >= int(e.cfg.MaxEjectionPercent)*e.hosts || !h.ejectedAt.IsZero() {
		return
	}
	if outlierRand() >= percent {
		return
	}
	h.ejectedAt, h.multiplier = e.now, h.multiplier+1
	e.ejected++
	e.changed = true
}

// bySuccessRate ejects, among the backends with request_volume calls (if
// minimum_hosts have), those whose success rate is under the mean by
// more than stdev_factor/1000 standard deviations (gRFC A50).
func (e *ejection) bySuccessRate(sr *SuccessRateEjection, samples []outlierSample) {
	var rates []float64
	var cands []outlierSample
	for _, s := range samples {
		if s.calls() >= int64(sr.RequestVolume) {
			rates = append(rates, float64(s.successes)/float64(s.calls()))
			cands = append(cands, s)
		}
	}
	if len(cands) < int(sr.MinimumHosts) {
		return
	}
	mean, stdev := meanStdev(rates)
	threshold := mean - stdev*float64(sr.StdevFactor)/1000
	for i, s := range cands {
		if rates[i] < threshold {
			e.eject(s.h, sr.EnforcementPercentage)
		}
	}
}

// byFailurePercentage ejects, among the backends with request_volume
// calls (if minimum_hosts have), those whose failures are above
// threshold percent (gRFC A50).
func (e *ejection) byFailurePercentage(fp *FailurePercentageEjection, samples []outlierSample) {
	var cands []outlierSample
	for _, s := range samples {
		if s.calls() >= int64(fp.RequestVolume) {
			cands = append(cands, s)
		}
	}
	if len(cands) < int(fp.MinimumHosts) {
		return
	}
	for _, s := range cands {
		if 100*s.failures > int64(fp.Threshold)*s.calls() {
			e.eject(s.h, fp.EnforcementPercentage)
		}
	}
}

// returnLocked brings back the backends whose ejection is over: an
// ejected backend returns after base * multiplier (at most the maximum);
// one not ejected this interval has its multiplier decremented (gRFC
// A50). It reports whether any returned.
func (o *Outliers) returnLocked(now time.Time) (changed bool) {
	for _, h := range o.hosts {
		switch {
		case h.ejectedAt.IsZero():
			if h.multiplier > 0 {
				h.multiplier--
			}
		case !h.ejectedAt.Equal(now):
			hold := min(time.Duration(o.cfg.BaseEjectionTime)*time.Duration(h.multiplier),
				max(time.Duration(o.cfg.BaseEjectionTime), time.Duration(o.cfg.MaxEjectionTime)))
			if !now.Before(h.ejectedAt.Add(hold)) {
				h.ejectedAt = time.Time{}
				changed = true
			}
		}
	}
	return changed
}

func meanStdev(xs []float64) (mean, stdev float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		stdev += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(stdev / float64(len(xs)))
}
