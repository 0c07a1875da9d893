// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Command greeter-server is a backend that registers itself with svcreg
// and drains on SIGINT/SIGTERM:
//
//	go run ./examples/greeter-server --name greeter-1 --port 9001
//
// It serves greeter.v1.GreeterService on 127.0.0.1:<port>, registers as an
// instance with labels app=greeter, renews its lease, and on a signal marks
// itself terminating, waits for clients to move away, deregisters and stops.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/svcreg/svcreg/client"
	greeterv1 "github.com/svcreg/svcreg/gen/greeter/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

type greeter struct {
	greeterv1.UnimplementedGreeterServiceServer
	name, zone string
}

func (g *greeter) Greet(_ context.Context, req *greeterv1.GreetRequest) (*greeterv1.GreetResponse, error) {
	return &greeterv1.GreetResponse{Message: "Hello, " + req.GetName(), Instance: g.name, Zone: g.zone}, nil
}

func main() {
	name := flag.String("name", "greeter-1", "instance name")
	port := flag.Int("port", 9001, "port to serve on (127.0.0.1)")
	weight := flag.Uint("weight", 1, "scheduling weight (0 quiesces)")
	zone := flag.String("zone", "", "zone")
	registry := flag.String("registry", "", "registry address (default $SVCREG_ADDR or 127.0.0.1:7400)")
	namespace := flag.String("namespace", "default", "namespace")
	app := flag.String("app", "greeter", "the app label (services select it)")
	probe := flag.Bool("probe", false, "register a gRPC readiness probe (grpc.health.v1) that svcreg runs every second; SIGUSR1 flips this server's health")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(srv, &greeter{name: *name, zone: *zone})
	healthSrv := health.NewServer()
	healthpb.RegisterHealthServer(srv, healthSrv)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go flipHealth(ctx, *name, healthSrv, usr1)
	go srv.Serve(lis)
	var readiness *svcregv1.Probe
	if *probe {
		// The registry checks grpc.health.v1 itself: NOT_SERVING twice in
		// a row and the instance's endpoints stop being ready.
		readiness = &svcregv1.Probe{Handler: &svcregv1.Probe_Grpc{Grpc: &svcregv1.GRPCProbe{Port: int32(lis.Addr().(*net.TCPAddr).Port)}},
			PeriodSeconds: 1, FailureThreshold: 2}
	}

	// Register in three lines: a client, an instance, a lease.
	reg, err := func() (*client.Registration, error) {
		c, err := client.New(ctx, *registry)
		if err != nil {
			return nil, err
		}
		return c.Register(ctx, &svcregv1.Instance{
			Name: *name, Namespace: *namespace, Ip: "127.0.0.1", Zone: *zone, Weight: proto.Uint32(uint32(*weight)),
			Labels:         map[string]string{"app": *app},
			Ports:          []*svcregv1.InstancePort{{Name: "grpc", Port: int32(lis.Addr().(*net.TCPAddr).Port)}},
			ReadinessProbe: readiness,
		}, 10*time.Second)
	}()
	if err != nil {
		log.Fatalf("register: %v", err)
	}
	log.Printf("%s serving on %s and registered", *name, lis.Addr())

	<-ctx.Done()
	log.Printf("%s draining", *name)
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Close(closeCtx); err != nil {
		log.Printf("deregister: %v", err)
	}
	srv.GracefulStop()
	log.Printf("%s stopped", *name)
}

// flipHealth turns the server's grpc.health.v1 status between SERVING
// and NOT_SERVING on each signal: a backend that is up but says it cannot
// serve, for trying readiness probes.
func flipHealth(ctx context.Context, name string, h *health.Server, usr1 <-chan os.Signal) {
	serving := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr1:
			serving = !serving
			status := healthpb.HealthCheckResponse_SERVING
			if !serving {
				status = healthpb.HealthCheckResponse_NOT_SERVING
			}
			h.SetServingStatus("", status)
			log.Printf("%s health: %v", name, status)
		}
	}
}
