// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package xds

import (
	"encoding/json"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	leastrequestv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/least_request/v3"
	ringhashv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	roundrobinv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	wrrlocalityv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/wrr_locality/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/servicemodel"
)

// ipvsTypeURL names svcreg's policy in a TypedStruct: gRPC takes the
// policy's name from the part after the last "/" (gRFC A52): "ipvs", the
// name package balancer registers.
const ipvsTypeURL = "svcreg.io/ipvs"

// clientChannelID is the filter state gRPC hashes to keep one channel on
// one backend (gRFC A42): the nearest thing to a client address.
const clientChannelID = "io.grpc.channel_id"

// policy is what a service's scheduler becomes in xDS.
type policy struct {
	policies   []*clusterv3.LoadBalancingPolicy_Policy
	hashPolicy []*routev3.RouteAction_HashPolicy
}

// policyFor is a service's Cluster policy list, which a client walks in
// order and takes the first it supports (gRFC A52): svcreg's own ipvs
// policy with the service's scheduler (Go clients that import svcreg's
// balancer), then the nearest policy gRPC has built in, then
// wrr_locality(round_robin), which every xDS client has, so none NACKs.
//
//	rr, wrr, and the rest      -> wrr_locality(round_robin): by endpoint weight
//	lc, wlc, sed, nq, twos     -> least_request
//	sh, dh, mh, ClientIP       -> ring_hash on the hash_key header, else on
//	                              the client's channel (one channel, one backend)
func policyFor(svc *svcregv1.Service) policy {
	cfg := servicemodel.Policy(svc)
	// Outlier detection travels as the Cluster's outlier_detection, which
	// every xDS client applies around whichever policy it picks: not in
	// the ipvs policy's own config too.
	cfg.OutlierDetection = nil
	js, _ := json.Marshal(cfg)
	var fields map[string]any
	json.Unmarshal(js, &fields)
	st, err := structpb.NewStruct(fields)
	if err != nil {
		st = &structpb.Struct{}
	}
	p := policy{policies: []*clusterv3.LoadBalancingPolicy_Policy{typed("svcreg.ipvs", &xdstypev3.TypedStruct{TypeUrl: ipvsTypeURL, Value: st})}}
	switch cfg.Scheduler {
	case "lc", "wlc", "sed", "nq", "twos":
		p.policies = append(p.policies, typed("least_request", &leastrequestv3.LeastRequest{}))
	case "sh", "dh", "mh":
		p.policies = append(p.policies, ringHash())
		p.hashPolicy = hashOn(cfg.HashKey)
	default:
		if cfg.PersistenceTimeout > 0 {
			p.policies = append(p.policies, ringHash())
			p.hashPolicy = hashOn(cfg.HashKey)
		}
	}
	p.policies = append(p.policies, weightedRoundRobin())
	return p
}

func ringHash() *clusterv3.LoadBalancingPolicy_Policy {
	return typed("ring_hash", &ringhashv3.RingHash{HashFunction: ringhashv3.RingHash_XX_HASH})
}

func weightedRoundRobin() *clusterv3.LoadBalancingPolicy_Policy {
	return typed("wrr_locality", &wrrlocalityv3.WrrLocality{EndpointPickingPolicy: &clusterv3.LoadBalancingPolicy{
		Policies: []*clusterv3.LoadBalancingPolicy_Policy{typed("round_robin", &roundrobinv3.RoundRobin{})}}})
}

// hashOn hashes a request on a header, or on the client's channel.
func hashOn(header string) []*routev3.RouteAction_HashPolicy {
	if header != "" {
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: header}}}}
	}
	return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_FilterState_{
		FilterState: &routev3.RouteAction_HashPolicy_FilterState{Key: clientChannelID}}}}
}

func typed(name string, m proto.Message) *clusterv3.LoadBalancingPolicy_Policy {
	return &clusterv3.LoadBalancingPolicy_Policy{TypedExtensionConfig: &corev3.TypedExtensionConfig{Name: name, TypedConfig: mustAny(m)}}
}

// outlierDetection is a service's outlier detection as the Cluster's
// (gRFC A50 reads it so): success-rate ejection is on when its
// enforcement is above 0 (Envoy's default is 100), failure-percentage
// ejection likewise (Envoy's default is 0, off), so each is set
// explicitly.
func outlierDetection(svc *svcregv1.Service) *clusterv3.OutlierDetection {
	od := servicemodel.Outliers(svc)
	if od == nil {
		return nil
	}
	c := od.WithDefaults()
	out := &clusterv3.OutlierDetection{
		Interval:                   durationpb.New(time.Duration(c.Interval)),
		BaseEjectionTime:           durationpb.New(time.Duration(c.BaseEjectionTime)),
		MaxEjectionTime:            durationpb.New(time.Duration(c.MaxEjectionTime)),
		MaxEjectionPercent:         wrapperspb.UInt32(c.MaxEjectionPercent),
		EnforcingSuccessRate:       wrapperspb.UInt32(0),
		EnforcingFailurePercentage: wrapperspb.UInt32(0),
	}
	if sr := c.SuccessRate; sr != nil {
		out.EnforcingSuccessRate, out.SuccessRateStdevFactor = wrapperspb.UInt32(sr.EnforcementPercentage), wrapperspb.UInt32(sr.StdevFactor)
		out.SuccessRateMinimumHosts, out.SuccessRateRequestVolume = wrapperspb.UInt32(sr.MinimumHosts), wrapperspb.UInt32(sr.RequestVolume)
	}
	if fp := c.FailurePercentage; fp != nil {
		out.EnforcingFailurePercentage, out.FailurePercentageThreshold = wrapperspb.UInt32(fp.EnforcementPercentage), wrapperspb.UInt32(fp.Threshold)
		out.FailurePercentageMinimumHosts, out.FailurePercentageRequestVolume = wrapperspb.UInt32(fp.MinimumHosts), wrapperspb.UInt32(fp.RequestVolume)
	}
	return out
}
