// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Command greeter-client calls the greeters through svcreg:
//
//	go run ./examples/greeter-client --count 10
//
// It dials svcreg:///greeter.default:grpc; the resolver follows the
// registry and the service's scheduler picks a backend per RPC.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/svcreg/svcreg/client"
	greeterv1 "github.com/svcreg/svcreg/gen/greeter/v1"
)

func main() {
	target := flag.String("target", "svcreg:///greeter.default:grpc", "svcreg target")
	count := flag.Int("count", 10, "RPCs to make")
	interval := flag.Duration("interval", 200*time.Millisecond, "pause between RPCs")
	flag.Parse()

	conn, err := client.Dial(*target)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	greeter := greeterv1.NewGreeterServiceClient(conn)
	for i := range *count {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := greeter.Greet(ctx, &greeterv1.GreetRequest{Name: fmt.Sprint("caller ", i)})
		cancel()
		if err != nil {
			log.Printf("RPC %d: %v", i, err)
		} else {
			fmt.Printf("%s (from %s)\n", resp.GetMessage(), resp.GetInstance())
		}
		time.Sleep(*interval)
	}
}
