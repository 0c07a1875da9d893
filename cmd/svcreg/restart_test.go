// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/svcreg/svcreg/client"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// backend is a gRPC server on loopback counting the RPCs it answers.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	port int
	hits atomic.Int64
}

func (b *backend) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	b.hits.Add(1)
	return &testgrpc.Empty{}, nil
}

func startBackends(t *testing.T, n int) []*backend {
	var out []*backend
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b := &backend{port: lis.Addr().(*net.TCPAddr).Port}
		srv := grpc.NewServer()
		testgrpc.RegisterTestServiceServer(srv, b)
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		out = append(out, b)
	}
	return out
}

// rpcLoad sends fail-fast RPCs at about 200/s until stopped, counting
// failures.
type rpcLoad struct {
	ok, failed atomic.Int64
	first      atomic.Pointer[error]
	stop       chan struct{}
	done       chan struct{}
}

func startRPCLoad(c testgrpc.TestServiceClient) *rpcLoad {
	l := &rpcLoad{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		for range 60_000 { // bounded: 5 minutes at most
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
					l.failed.Add(1)
					l.first.CompareAndSwap(nil, &err)
					return
				}
				l.ok.Add(1)
			})
		}
	}()
	return l
}

// waitMore waits until n more RPCs succeeded: time passes by the load's
// own progress, never by a sleep.
func (l *rpcLoad) waitMore(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	poll(t, fmt.Sprintf("%d more RPCs", n), 30*time.Second, func() bool { return l.ok.Load() >= want })
}

func (l *rpcLoad) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	<-l.done
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d of %d fail-fast RPCs failed across the registry restarts; first: %v", n, n+l.ok.Load(), *l.first.Load())
	}
	t.Logf("%d RPCs, none failed", l.ok.Load())
}

// fleet is the registry state these tests check after each restart: a
// service "web" with the backends, and a headless "db" with dbInstances,
// so that a partial view shows.
const dbInstances = 40

func seedFleet(t *testing.T, p *proc, backends []*backend) {
	ctx := context.Background()
	reg := p.registry()
	if _, err := reg.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: webService()}); err != nil {
		t.Fatal(err)
	}
	for i, b := range backends {
		inst := &svcregv1.Instance{Name: fmt.Sprintf("b%d", i), Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": "web"},
			Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: int32(b.port)}}}
		if _, err := reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst}); err != nil {
			t.Fatal(err)
		}
	}
	db := &svcregv1.Service{Name: "db", Namespace: "shop", ClusterIp: "None", Selector: map[string]string{"app": "db"}}
	if _, err := reg.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: db}); err != nil {
		t.Fatal(err)
	}
	for i := range dbInstances {
		inst := &svcregv1.Instance{Name: fmt.Sprintf("db-%d", i), Namespace: "shop", Ip: fmt.Sprintf("10.1.0.%d", i+1), Labels: map[string]string{"app": "db"}}
		if _, err := reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: inst}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkCompleteOnReady waits for /readyz, then checks that the first read,
// the first watch and the first DNS answer hold the whole fleet.
func checkCompleteOnReady(t *testing.T, p *proc) {
	t.Helper()
	p.waitReady(60 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p.registry().ListEndpoints(ctx, &svcregv1.ListEndpointsRequest{Namespace: "shop", Service: "db"})
	if err != nil || len(resp.GetEndpoints()) != dbInstances {
		t.Errorf("%s: the first read after ready: %d endpoints, %v; want %d", p.name, len(resp.GetEndpoints()), err, dbInstances)
	}
	st, err := p.registry().WatchEndpoints(ctx, &svcregv1.WatchEndpointsRequest{Namespace: "shop", Service: "db"})
	if err != nil {
		t.Fatal(err)
	}
	added := 0
	for {
		ev, err := st.Recv()
		if err != nil {
			t.Fatalf("%s: the first watch after ready: %v", p.name, err)
		}
		if ev.GetType() == svcregv1.EventType_EVENT_TYPE_SYNCED {
			break
		}
		if ev.GetEndpoint() != nil {
			added++
		}
	}
	if added != dbInstances {
		t.Errorf("%s: the first watch after ready was SYNCED after %d endpoints, want %d", p.name, added, dbInstances)
	}
	q := new(dns.Msg)
	q.SetQuestion("db.shop.svc.cluster.local.", dns.TypeA)
	a, _, err := (&dns.Client{Net: "tcp"}).Exchange(q, p.dns)
	if err != nil || a.Rcode != dns.RcodeSuccess || len(a.Answer) != dbInstances {
		t.Errorf("%s: the first DNS answer after ready: %v, %d records; want NOERROR with %d", p.name, err, len(a.Answer), dbInstances)
	}
}

// TestRestartsUnderLoad restarts the registry a client resolves through,
// with kill -9 and with SIGTERM, while the client sends fail-fast RPCs
// through the svcreg:/// resolver: no RPC fails (the resolver keeps the
// last state, and a restarted server hands out nothing before it is
// complete), and what the restarted server serves first is complete.
func TestRestartsUnderLoad(t *testing.T) {
	t.Parallel()
	t.Run("single server", func(t *testing.T) {
		p := startProc(t, "n1", "--data-dir", t.TempDir())
		p.waitReady(20 * time.Second)
		restartsUnderLoad(t, p, p)
	})
	t.Run("the follower a client uses", func(t *testing.T) {
		procs := startThree(t)
		leader := leaderOf(t, procs)
		var follower *proc
		for _, p := range procs {
			if p != leader {
				follower = p
			}
		}
		restartsUnderLoad(t, leader, follower)
	})
}

func restartsUnderLoad(t *testing.T, writeTo, victim *proc) {
	backends := startBackends(t, 3)
	seedFleet(t, writeTo, backends)
	rc, err := client.New(context.Background(), victim.grpc, client.WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	conn, err := rc.Dial("svcreg:///web.shop:grpc")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := testgrpc.NewTestServiceClient(conn)
	poll(t, "RPCs to reach every backend", 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.EmptyCall(ctx, &testgrpc.Empty{}, grpc.WaitForReady(true))
		for _, b := range backends {
			if b.hits.Load() == 0 {
				return false
			}
		}
		return true
	})
	load := startRPCLoad(c)
	for _, stop := range []struct {
		name string
		do   func()
	}{{"kill -9", victim.kill}, {"SIGTERM", victim.term}} {
		load.waitMore(t, 50)
		stop.do()
		load.waitMore(t, 100) // RPCs go on while the registry is down
		victim.restart()
		checkCompleteOnReady(t, victim)
		t.Logf("%s after %s: ready and complete", victim.name, stop.name)
	}
	load.waitMore(t, 100)
	load.finish(t)
}
