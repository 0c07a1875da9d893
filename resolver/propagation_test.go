package resolver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/credentials/insecure"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	svcresolver "github.com/svcreg/svcreg/resolver"
	"github.com/svcreg/svcreg/server"
)

// recorder is an LB policy that notes when each address first reaches its
// ClientConn: the end of the resolver's path (registry -> watch -> resolver
// -> ClientConn -> balancer).
type recorder struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

type recorderBuilder struct {
	mu   sync.Mutex
	recs []*recorder
}

func (*recorderBuilder) Name() string { return "svcreg_propagation_recorder" }

func (rb *recorderBuilder) Build(balancer.ClientConn, balancer.BuildOptions) balancer.Balancer {
	r := &recorder{seen: map[string]time.Time{}}
	rb.mu.Lock()
	rb.recs = append(rb.recs, r)
	rb.mu.Unlock()
	return r
}

func (r *recorder) UpdateClientConnState(s balancer.ClientConnState) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[""] = now // any update at all
	for _, ep := range s.ResolverState.Endpoints {
		if _, ok := r.seen[ep.Addresses[0].Addr]; !ok {
			r.seen[ep.Addresses[0].Addr] = now
		}
	}
	return nil
}
func (r *recorder) ResolverError(error)                                        {}
func (r *recorder) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}
func (r *recorder) Close()                                                     {}
func (r *recorder) ExitIdle()                                                  {}

func (r *recorder) at(addr string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.seen[addr]
	return t, ok
}

var recorders = &recorderBuilder{}

func init() { balancer.Register(recorders) }

// BenchmarkPropagation measures the time from CreateInstance returning to
// the new endpoint reaching every ClientConn's LB policy, with 1, 100 and
// 1,000 ClientConns in one process sharing the resolver's watch.
//
//	go test -run XXX -bench BenchmarkPropagation -benchtime 20x ./resolver/
func BenchmarkPropagation(b *testing.B) {
	for _, conns := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DNSAddr: "-", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { srv.Serve(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			admin, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close()
			reg := svcregv1.NewRegistryServiceClient(admin)
			if _, err := reg.CreateService(ctx, &svcregv1.CreateServiceRequest{Service: &svcregv1.Service{Name: "web", Namespace: "shop",
				Selector: map[string]string{"app": "web"}, Ports: []*svcregv1.ServicePort{{Name: "grpc", Port: 443, TargetPort: "grpc"}}}}); err != nil {
				b.Fatal(err)
			}

			recorders.mu.Lock()
			first := len(recorders.recs)
			recorders.mu.Unlock()
			builder := svcresolver.NewBuilder()
			for range conns {
				cc, err := grpc.NewClient(fmt.Sprintf("svcreg://%s/web.shop:grpc", srv.GRPCAddr()),
					grpc.WithResolvers(builder), grpc.WithTransportCredentials(insecure.NewCredentials()),
					grpc.WithDisableServiceConfig(), grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"svcreg_propagation_recorder":{}}]}`))
				if err != nil {
					b.Fatal(err)
				}
				defer cc.Close()
				cc.Connect()
			}
			recorders.mu.Lock()
			for len(recorders.recs) < first+conns {
				recorders.mu.Unlock()
				time.Sleep(time.Millisecond)
				recorders.mu.Lock()
			}
			recs := slices.Clone(recorders.recs[first:])
			recorders.mu.Unlock()
			waitAll(b, recs, "")

			var lat []float64
			for i := 0; b.Loop(); i++ {
				port := int32(20000 + i)
				if _, err := reg.CreateInstance(ctx, &svcregv1.CreateInstanceRequest{Instance: &svcregv1.Instance{
					Name: fmt.Sprint("i", i), Namespace: "shop", Ip: "127.0.0.1", Labels: map[string]string{"app": "web"},
					Ports: []*svcregv1.InstancePort{{Name: "grpc", Port: port}}}}); err != nil {
					b.Fatal(err)
				}
				acked := time.Now()
				addr := fmt.Sprintf("127.0.0.1:%d", port)
				waitAll(b, recs, addr)
				for _, r := range recs {
					at, _ := r.at(addr)
					lat = append(lat, float64(at.Sub(acked))/1e6)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2], "p50-ms")
			b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
			b.ReportMetric(lat[len(lat)-1], "max-ms")
		})
	}
}

func waitAll(b *testing.B, recs []*recorder, addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range recs {
		for {
			if _, ok := r.at(addr); ok {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("address %q did not reach every ClientConn", addr)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}
