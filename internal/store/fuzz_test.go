// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/meta"
)

// FuzzValidateService feeds arbitrary services (as wire bytes) through
// defaulting and validation: never a panic, and every error names a field.
func FuzzValidateService(f *testing.F) {
	for _, svc := range []*svcregv1.Service{webService(), {Name: "x", ClusterIp: "None"}, {Type: 4, ExternalName: "a.b"}} {
		b, _ := proto.Marshal(svc)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		svc := &svcregv1.Service{}
		if proto.Unmarshal(b, svc) != nil {
			return
		}
		defaultService(svc)
		for _, e := range ValidateService(svc, "service", DefaultLimits) {
			if e.Field == "" || e.Error() == "" {
				t.Fatalf("error without field: %#v", e)
			}
		}
	})
}

// FuzzValidateInstance does the same for instances.
func FuzzValidateInstance(f *testing.F) {
	for _, inst := range []*svcregv1.Instance{webInstance("web-1", "10.0.0.1"), {Name: "a", Ip: "::1", UpperThreshold: proto.Uint32(3)}} {
		b, _ := proto.Marshal(inst)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		inst := &svcregv1.Instance{}
		if proto.Unmarshal(b, inst) != nil {
			return
		}
		defaultInstance(inst)
		for _, e := range ValidateInstance(inst, "instance", DefaultLimits) {
			if e.Field == "" || e.Error() == "" {
				t.Fatalf("error without field: %#v", e)
			}
		}
	})
}

// FuzzApply applies arbitrary create commands to a store holding a service
// and an instance: a rejected command leaves the revision alone, an
// accepted one is valid when read back.
func FuzzApply(f *testing.F) {
	for _, m := range []proto.Message{webService(), webInstance("web-2", "10.0.0.2")} {
		b, _ := proto.Marshal(m)
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, isService bool) {
		s := newTestStore(t, "10.96.0.0/28", "30000-30003")
		mustApply(t, s, webService())
		mustApply(t, s, webInstance("web-1", "10.0.0.1"))
		rev := s.Revision()
		var op proto.Message = &svcregv1.Instance{}
		if isService {
			op = &svcregv1.Service{}
		}
		if proto.Unmarshal(b, op) != nil {
			return
		}
		res, err := s.Apply(cmd(op))
		if err != nil {
			if s.Revision() != rev {
				t.Fatalf("failed command moved the revision: %v", err)
			}
			return
		}
		if res.Service != nil && len(ValidateService(res.Service, "service", DefaultLimits)) > 0 {
			t.Fatalf("stored an invalid service: %v", ValidateService(res.Service, "service", DefaultLimits))
		}
		if res.Instance != nil && len(ValidateInstance(res.Instance, "instance", DefaultLimits)) > 0 {
			t.Fatalf("stored an invalid instance")
		}
	})
}

// FuzzSnapshot loads arbitrary bytes as a snapshot: never a panic; what
// Validate accepts restores, serves reads and writes, and saves to a
// snapshot that loads again at the same revision.
func FuzzSnapshot(f *testing.F) {
	s := newTestStore(f, "10.96.0.0/28", "30000-30003")
	mustApply(f, s, webService())
	mustApply(f, s, webInstance("web-1", "10.0.0.1"))
	var b bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&b); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte(snapshotHeader))
	f.Add([]byte(snapshotHeader + "\x02\x08\x07"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newTestStore(t, "10.96.0.0/28", "30000-30003")
		var moved bytes.Buffer
		if _, err := s.PrepareRestore(&moved, bytes.NewReader(data), 99); err == nil {
			if _, err := s.Validate(bytes.NewReader(moved.Bytes())); err == nil {
				if rev, _ := s.Validate(bytes.NewReader(moved.Bytes())); rev != 99 {
					t.Fatalf("PrepareRestore(99) gave revision %d", rev)
				}
			}
		}
		rev, err := s.Validate(bytes.NewReader(data))
		if err != nil {
			return
		}
		if got, err := s.Restore(bytes.NewReader(data)); err != nil || got != rev {
			t.Fatalf("Restore after Validate: revision %d, %v (validated %d)", got, err, rev)
		}
		if _, err := s.Read().ListInstances(ListQuery{Namespace: meta.AllNamespaces, Limit: 100}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Read().ListServices(ListQuery{Namespace: meta.AllNamespaces, Limit: 100}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyAt(max(rev, 0)+1, cmd(webInstance("fuzz-1", "10.0.0.9"))); err != nil && !errors.Is(err, ErrAlreadyExists) {
			t.Logf("write after restore: %v", err) // refused with a reason is fine
		}
		var out bytes.Buffer
		if _, err := s.Snapshot().WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		if again, err := s.Validate(bytes.NewReader(out.Bytes())); err != nil || again != s.Revision() {
			t.Fatalf("re-saved snapshot: revision %d, %v (store at %d)", again, err, s.Revision())
		}
	})
}
