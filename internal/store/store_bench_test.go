// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// benchStore fills namespace "bench" with services svc-0..S-1 (selector
// app=svc-j) and instances inst-0..N-1 (app=svc-(i mod S)).
func benchStore(b testing.TB, instances, services int) *Store {
	s := newTestStore(b, "10.96.0.0/16", "30000-32767")
	for j := 0; j < services; j++ {
		mustApply(b, s, &svcregv1.Service{Name: fmt.Sprintf("svc-%d", j), Namespace: "bench",
			Selector: map[string]string{"app": fmt.Sprintf("svc-%d", j)},
			Ports:    []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}}})
	}
	for i := 0; i < instances; i++ {
		mustApply(b, s, &svcregv1.Instance{Name: fmt.Sprintf("inst-%d", i), Namespace: "bench",
			Ip:     fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			Labels: map[string]string{"app": fmt.Sprintf("svc-%d", i%services), "pod": fmt.Sprintf("inst-%d", i)},
			Ports:  []*svcregv1.InstancePort{{Name: "grpc", Port: 8443}}})
	}
	return s
}

// BenchmarkInstanceUpsert updates one instance's weight per op: one command,
// one transaction, one endpoint re-derived. The cost must not grow with the
// number of instances or services in the namespace.
func BenchmarkInstanceUpsert(b *testing.B) {
	for _, services := range []int{1, 100} {
		for _, instances := range []int{10, 1000, 10000} {
			b.Run(fmt.Sprintf("services=%d/instances=%d", services, instances), func(b *testing.B) {
				s := benchStore(b, instances, services)
				reqs := make([]*svcregv1.UpdateInstanceRequest, 2)
				for w := range reqs {
					reqs[w] = &svcregv1.UpdateInstanceRequest{
						Instance:   &svcregv1.Instance{Namespace: "bench", Weight: proto.Uint32(uint32(w + 2))},
						UpdateMask: mask("weight"),
					}
				}
				names := make([]string, instances)
				for i := range names {
					names[i] = fmt.Sprintf("inst-%d", i)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					req := reqs[(i/instances)%2]
					req.Instance.Name = names[i%instances]
					if _, err := s.Apply(cmd(req)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkInstanceCreate registers new instances into a populated
// namespace (create + endpoint derivation).
func BenchmarkInstanceCreate(b *testing.B) {
	for _, services := range []int{1, 100} {
		for _, instances := range []int{10, 1000, 10000} {
			b.Run(fmt.Sprintf("services=%d/instances=%d", services, instances), func(b *testing.B) {
				s := benchStore(b, instances, services)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					inst := &svcregv1.Instance{Name: fmt.Sprintf("new-%d", i), Namespace: "bench", Ip: "10.200.0.1", Uid: "u",
						Labels: map[string]string{"app": fmt.Sprintf("svc-%d", i%services)},
						Ports:  []*svcregv1.InstancePort{{Name: "grpc", Port: 8443}}}
					if _, err := s.Apply(cmd(inst)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkEndpointsRead reads all endpoints of one service from a
// snapshot.
func BenchmarkEndpointsRead(b *testing.B) {
	for _, size := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("endpoints=%d", size), func(b *testing.B) {
			s := benchStore(b, size, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				eps, err := s.Read().Endpoints("bench", "svc-0")
				if err != nil || len(eps) != size {
					b.Fatal(len(eps), err)
				}
			}
		})
	}
}

// BenchmarkApplyBatch applies weight updates (with request ids, as Raft
// proposes them) in batches of 1 to 64 commands, as the Raft state
// machine hands them over under load; ns/op is per command.
func BenchmarkApplyBatch(b *testing.B) {
	const instances = 1000
	for _, size := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := benchStore(b, instances, 10)
			batch := make([]Entry, size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i += size {
				rev := s.Revision()
				for k := range batch {
					n := i + k
					c := cmd(&svcregv1.UpdateInstanceRequest{
						Instance:   &svcregv1.Instance{Namespace: "bench", Name: fmt.Sprintf("inst-%d", n%instances), Weight: proto.Uint32(uint32(n/instances%2 + 2))},
						UpdateMask: mask("weight"),
					})
					c.RequestId = fmt.Sprintf("%032x", n)
					batch[k] = Entry{Index: rev + int64(k) + 1, Command: c}
				}
				for _, o := range s.ApplyBatch(batch) {
					if o.Err != nil {
						b.Fatal(o.Err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/command")
		})
	}
}

// BenchmarkRestore loads a snapshot of 50,000 instances over 1,000
// services (and their endpoints): most of a restart's time.
func BenchmarkRestore(b *testing.B) {
	var snap bytes.Buffer
	if _, err := benchStore(b, 50000, 1000).Snapshot().WriteTo(&snap); err != nil {
		b.Fatal(err)
	}
	s := newTestStore(b, "10.96.0.0/16", "30000-32767")
	b.SetBytes(int64(snap.Len()))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Restore(bytes.NewReader(snap.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
