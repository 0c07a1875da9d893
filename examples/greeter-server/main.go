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
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(srv, &greeter{name: *name, zone: *zone})
	go srv.Serve(lis)

	// Register in three lines: a client, an instance, a lease.
	reg, err := func() (*client.Registration, error) {
		c, err := client.New(ctx, *registry)
		if err != nil {
			return nil, err
		}
		return c.Register(ctx, &svcregv1.Instance{
			Name: *name, Namespace: *namespace, Ip: "127.0.0.1", Zone: *zone, Weight: proto.Uint32(uint32(*weight)),
			Labels: map[string]string{"app": "greeter"},
			Ports:  []*svcregv1.InstancePort{{Name: "grpc", Port: int32(lis.Addr().(*net.TCPAddr).Port)}},
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
