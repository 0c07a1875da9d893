// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	clusterv1 "github.com/svcreg/svcreg/gen/svcreg/cluster/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/reason"
)

// TestClientPortServesNoPeerMethod: the client port serves the public API
// only; forwarding, joining, node info and raw commands are on the peer
// port.
func TestClientPortServesNoPeerMethod(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	m := c.waitLeader()
	var served []string
	for name := range m.grpc.GetServiceInfo() {
		served = append(served, name)
	}
	slices.Sort(served)
	want := []string{"envoy.service.discovery.v3.AggregatedDiscoveryService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
		"svcreg.v1.OperatorService", "svcreg.v1.RegistryService", "svcreg.v1.TokenService", "svcreg.v1.XDSService"}
	if !slices.Equal(served, want) {
		t.Errorf("the client port serves %v, want %v", served, want)
	}
	for _, method := range []string{"ApplyCommand", "Join", "GetNodeInfo"} {
		err := m.conn.Invoke(context.Background(), "/"+clusterv1.PeerService_ServiceDesc.ServiceName+"/"+method, &clusterv1.JoinRequest{}, &clusterv1.JoinResponse{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("PeerService/%s on the client port: %v, want Unimplemented", method, err)
		}
	}
	if _, ok := m.peer.GetServiceInfo()[clusterv1.PeerService_ServiceDesc.ServiceName]; !ok {
		t.Errorf("the peer port does not serve PeerService")
	}
}

// TestEveryRPCSurvivesJunk calls every method of the client and the peer
// port with an empty and with random messages: the server answers each
// (with an error, mostly) and stays up, and no answer is a caught panic.
func TestEveryRPCSurvivesJunk(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, Config{})
	m := c.waitLeader()
	m.mustCreateService(t, webSvc())
	m.mustCreateInstance(t, webInst("web-1"))
	peerConn, err := m.node.PeerConn(m.PeerAddr())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, port := range []struct {
		name string
		srv  *grpc.Server
		conn *grpc.ClientConn
	}{{"client", m.grpc, m.conn}, {"peer", m.peer, peerConn}} {
		for svcName, info := range port.srv.GetServiceInfo() {
			for _, method := range info.Methods {
				full := "/" + svcName + "/" + method.Name
				input := inputType(t, svcName, method.Name)
				for i := range 5 {
					msg := input.New().Interface()
					if i > 0 {
						randomMessage(rng, msg.ProtoReflect(), 0)
					}
					err := callOnce(port.conn, full, method, msg)
					if status.Code(err) == codes.Internal && reason.Of(err) != "" {
						t.Errorf("%s port %s with %v: an internal error (a bug): %v", port.name, full, prototextShort(msg), err)
					}
				}
				if _, err := m.client.ListServices(context.Background(), &svcregv1.ListServicesRequest{Namespace: "-", Consistency: "stale"}); err != nil {
					t.Fatalf("after junk to %s port %s, the server does not answer: %v", port.name, full, err)
				}
			}
		}
	}
}

func inputType(t *testing.T, service, method string) protoreflect.MessageType {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		t.Fatalf("%s: %v", service, err)
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatalf("%s.%s: %v", service, method, err)
	}
	return mt
}

// callOnce sends msg to a method (unary or streaming) and reads the
// outcome, within a second (a watch that opens is left after 200 ms).
func callOnce(conn *grpc.ClientConn, full string, info grpc.MethodInfo, msg proto.Message) error {
	timeout := time.Second
	if info.IsServerStream {
		timeout = 200 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if !info.IsClientStream && !info.IsServerStream {
		return conn.Invoke(ctx, full, msg, new(emptyReply))
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: info.IsServerStream, ClientStreams: info.IsClientStream}, full)
	if err != nil {
		return err
	}
	if err := st.SendMsg(msg); err != nil && err != io.EOF {
		return err
	}
	st.CloseSend()
	for range 100 {
		if err := st.RecvMsg(new(emptyReply)); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
	return nil
}

// emptyReply decodes any reply (its fields are unknown to it).
type emptyReply = svcregv1.ListPeersRequest

// randomMessage fills m with random values, a few levels deep.
func randomMessage(rng *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if rng.IntN(3) == 0 || fd.ContainingOneof() != nil && rng.IntN(2) == 0 {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range rng.IntN(3) {
				if fd.Message() != nil {
					if depth < 3 {
						randomMessage(rng, l.AppendMutable().Message(), depth+1)
					}
					continue
				}
				l.Append(randomScalar(rng, fd))
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range rng.IntN(3) {
				k := randomScalar(rng, fd.MapKey()).MapKey()
				if fd.MapValue().Message() != nil {
					if depth < 3 {
						randomMessage(rng, mp.Mutable(k).Message(), depth+1)
					}
					continue
				}
				mp.Set(k, randomScalar(rng, fd.MapValue()))
			}
		case fd.Message() != nil:
			if depth < 3 {
				randomMessage(rng, m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, randomScalar(rng, fd))
		}
	}
}

var junkStrings = []string{"", "a", "web", "shop", "-", "None", "10.96.0.1", "::1", "x/y", "\x00", "ünïcode", "app=web,tier!=x", "9999999999"}

func randomScalar(rng *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 0)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(rng.IntN(6) - 1))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(rng.Uint32()))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(rng.Uint64()) >> rng.IntN(64))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(rng.Uint32())
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(rng.Uint64() >> rng.IntN(64))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(rng.Float32())
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(rng.Float64())
	case protoreflect.BytesKind:
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return protoreflect.ValueOfBytes(b)
	}
	return protoreflect.ValueOfString(junkStrings[rng.IntN(len(junkStrings))])
}

func prototextShort(m proto.Message) string {
	s := fmt.Sprint(m)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
