package client

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	// The ipvs policy, so that services' schedulers apply.
	_ "github.com/svcreg/svcreg/balancer"
	"github.com/svcreg/svcreg/resolver"
)

// Dial is grpc.NewClient for svcreg targets (svcreg:///web.shop:grpc),
// with the svcreg resolver and the ipvs balancer wired in. Transport
// credentials default to plaintext; pass grpc.WithTransportCredentials to
// change them. Other options pass through.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(defaultResolver),
	}, opts...)
	return grpc.NewClient(target, all...)
}

var defaultResolver = resolver.NewBuilder()
