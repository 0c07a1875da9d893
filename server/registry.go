package server

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/jonboulle/clockwork"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
	"github.com/svcreg/svcreg/internal/cluster"
	"github.com/svcreg/svcreg/internal/kubedns"
	"github.com/svcreg/svcreg/internal/labels"
	"github.com/svcreg/svcreg/internal/lease"
	"github.com/svcreg/svcreg/internal/store"
	"github.com/svcreg/svcreg/internal/validation"
	"github.com/svcreg/svcreg/internal/watch"
)

// applier executes a store command: the store itself on a single node, a
// replicated log in front of it in a cluster.
type applier interface {
	Apply(*storev1.Command) (*store.Result, error)
}

// registry implements svcreg.v1.RegistryService. It reads from the store and
// writes by proposing commands; domain errors go back unconverted (the
// interceptor converts them).
type registry struct {
	svcregv1.UnimplementedRegistryServiceServer
	store  *store.Store
	apply  applier
	clock  clockwork.Clock
	hub    *watch.Hub
	leases *lease.Manager
	dns    *kubedns.Resolver
	node   *cluster.Node
}

// command stamps a write with the proposer's clock.
func (r *registry) command() *storev1.Command {
	return &storev1.Command{Time: timestamppb.New(r.clock.Now())}
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (r *registry) CreateService(_ context.Context, req *svcregv1.CreateServiceRequest) (*svcregv1.CreateServiceResponse, error) {
	if req.GetService() != nil {
		req.Service.Uid = newUID()
	}
	cmd := r.command()
	cmd.Op = &storev1.Command_CreateService{CreateService: req}
	res, err := r.apply.Apply(cmd)
	if err != nil {
		return nil, err
	}
	return &svcregv1.CreateServiceResponse{Service: res.Service}, nil
}

func (r *registry) GetService(ctx context.Context, req *svcregv1.GetServiceRequest) (*svcregv1.GetServiceResponse, error) {
	ns, err := objectRef(req.GetNamespace(), req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	if here, err := r.readHere(ctx, req.GetConsistency(), req.GetMinRevision()); err != nil {
		return nil, err
	} else if !here {
		return forward(ctx, r, func(c svcregv1.RegistryServiceClient, ctx context.Context) (*svcregv1.GetServiceResponse, error) {
			return c.GetService(ctx, req)
		})
	}
	svc, _, err := r.store.Service(ns, req.GetName())
	if err != nil {
		return nil, err
	}
	return &svcregv1.GetServiceResponse{Service: svc}, nil
}

func (r *registry) ListServices(ctx context.Context, req *svcregv1.ListServicesRequest) (*svcregv1.ListServicesResponse, error) {
	q, err := listQuery(req.GetNamespace(), req.GetPageSize(), req.GetPageToken(), req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	if here, err := r.readHere(ctx, req.GetConsistency(), req.GetMinRevision()); err != nil {
		return nil, err
	} else if !here {
		return forward(ctx, r, func(c svcregv1.RegistryServiceClient, ctx context.Context) (*svcregv1.ListServicesResponse, error) {
			return c.ListServices(ctx, req)
		})
	}
	page, err := r.store.ListServices(q)
	if err != nil {
		return nil, err
	}
	return &svcregv1.ListServicesResponse{
		Services:        page.Items,
		NextPageToken:   encodePageToken(page.Next, q.Namespace, q.Selector.String()),
		ResourceVersion: page.Revision,
	}, nil
}

func (r *registry) UpdateService(_ context.Context, req *svcregv1.UpdateServiceRequest) (*svcregv1.UpdateServiceResponse, error) {
	cmd := r.command()
	cmd.Op = &storev1.Command_UpdateService{UpdateService: req}
	res, err := r.apply.Apply(cmd)
	if err != nil {
		return nil, err
	}
	return &svcregv1.UpdateServiceResponse{Service: res.Service}, nil
}

func (r *registry) DeleteService(_ context.Context, req *svcregv1.DeleteServiceRequest) (*svcregv1.DeleteServiceResponse, error) {
	if _, err := objectRef(req.GetNamespace(), req.GetName(), "name"); err != nil {
		return nil, err
	}
	cmd := r.command()
	cmd.Op = &storev1.Command_DeleteService{DeleteService: req}
	res, err := r.apply.Apply(cmd)
	if err != nil {
		return nil, err
	}
	return &svcregv1.DeleteServiceResponse{ResourceVersion: res.Revision}, nil
}

func (r *registry) CreateInstance(_ context.Context, req *svcregv1.CreateInstanceRequest) (*svcregv1.CreateInstanceResponse, error) {
	if req.GetInstance() != nil {
		req.Instance.Uid = newUID()
	}
	cmd := r.command()
	cmd.Op = &storev1.Command_CreateInstance{CreateInstance: req}
	res, err := r.apply.Apply(cmd)
	if err != nil {
		return nil, err
	}
	return &svcregv1.CreateInstanceResponse{Instance: r.withLease(res.Instance)}, nil
}

func (r *registry) GetInstance(ctx context.Context, req *svcregv1.GetInstanceRequest) (*svcregv1.GetInstanceResponse, error) {
	ns, err := objectRef(req.GetNamespace(), req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	if here, err := r.readHere(ctx, req.GetConsistency(), req.GetMinRevision()); err != nil {
		return nil, err
	} else if !here {
		return forward(ctx, r, func(c svcregv1.RegistryServiceClient, ctx context.Context) (*svcregv1.GetInstanceResponse, error) {
			return c.GetInstance(ctx, req)
		})
	}
	inst, _, err := r.store.Instance(ns, req.GetName())
	if err != nil {
		return nil, err
	}
	return &svcregv1.GetInstanceResponse{Instance: r.withLease(inst)}, nil
}

func (r *registry) ListInstances(ctx context.Context, req *svcregv1.ListInstancesRequest) (*svcregv1.ListInstancesResponse, error) {
	q, err := listQuery(req.GetNamespace(), req.GetPageSize(), req.GetPageToken(), req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	if here, err := r.readHere(ctx, req.GetConsistency(), req.GetMinRevision()); err != nil {
		return nil, err
	} else if !here {
		return forward(ctx, r, func(c svcregv1.RegistryServiceClient, ctx context.Context) (*svcregv1.ListInstancesResponse, error) {
			return c.ListInstances(ctx, req)
		})
	}
	page, err := r.store.ListInstances(q)
	if err != nil {
		return nil, err
	}
	return &svcregv1.ListInstancesResponse{
		Instances:       page.Items,
		NextPageToken:   encodePageToken(page.Next, q.Namespace, q.Selector.String()),
		ResourceVersion: page.Revision,
	}, nil
}

func (r *registry) UpdateInstance(_ context.Context, req *svcregv1.UpdateInstanceRequest) (*svcregv1.UpdateInstanceResponse, error) {
	cmd := r.command()
	cmd.Op = &storev1.Command_UpdateInstance{UpdateInstance: req}
	res, err := r.apply.Apply(cmd)
	if err != nil {
		return nil, err
	}
	return &svcregv1.UpdateInstanceResponse{Instance: r.withLease(res.Instance)}, nil
}

func (r *registry) DeleteInstance(_ context.Context, req *svcregv1.DeleteInstanceRequest) (*svcregv1.DeleteInstanceResponse, error) {
	if _, err := objectRef(req.GetNamespace(), req.GetName(), "name"); err != nil {
		return nil, err
	}
	cmd := r.command()
	cmd.Op = &storev1.Command_DeleteInstance{DeleteInstance: req}
	res, err := r.apply.Apply(cmd)
	if err != nil {
		return nil, err
	}
	return &svcregv1.DeleteInstanceResponse{ResourceVersion: res.Revision}, nil
}

func (r *registry) ListEndpoints(ctx context.Context, req *svcregv1.ListEndpointsRequest) (*svcregv1.ListEndpointsResponse, error) {
	ns, err := objectRef(req.GetNamespace(), req.GetService(), "service")
	if err != nil {
		return nil, err
	}
	if here, err := r.readHere(ctx, req.GetConsistency(), req.GetMinRevision()); err != nil {
		return nil, err
	} else if !here {
		return forward(ctx, r, func(c svcregv1.RegistryServiceClient, ctx context.Context) (*svcregv1.ListEndpointsResponse, error) {
			return c.ListEndpoints(ctx, req)
		})
	}
	eps, rev, err := r.store.Endpoints(ns, req.GetService())
	if err != nil {
		return nil, err
	}
	return &svcregv1.ListEndpointsResponse{Endpoints: eps, ResourceVersion: rev}, nil
}

func (r *registry) ReplaceEndpoints(_ context.Context, req *svcregv1.ReplaceEndpointsRequest) (*svcregv1.ReplaceEndpointsResponse, error) {
	if _, err := objectRef(req.GetNamespace(), req.GetService(), "service"); err != nil {
		return nil, err
	}
	cmd := r.command()
	cmd.Op = &storev1.Command_ReplaceEndpoints{ReplaceEndpoints: req}
	res, err := r.apply.Apply(cmd)
	if err != nil {
		return nil, err
	}
	return &svcregv1.ReplaceEndpointsResponse{Endpoints: res.Endpoints, ResourceVersion: res.Revision}, nil
}

// objectRef checks the namespace and name of a request that names one
// object, and defaults the namespace.
func objectRef(namespace, name, nameField string) (string, error) {
	if namespace == "" {
		namespace = store.DefaultNamespace
	}
	var errs validation.ErrorList
	if name == "" {
		errs = append(errs, validation.Required(validation.Path(nameField), ""))
	}
	errs = append(errs, validation.Invalids("namespace", namespace, validation.IsDNS1123Label(namespace))...)
	return namespace, errs.Err()
}

// listQuery checks and decodes the common list parameters.
func listQuery(namespace string, size int32, token, selector string) (store.ListQuery, error) {
	if namespace == "" {
		namespace = store.DefaultNamespace
	}
	var errs validation.ErrorList
	if namespace != store.AllNamespaces {
		errs = append(errs, validation.Invalids("namespace", namespace, validation.IsDNS1123Label(namespace))...)
	}
	limit, err := pageSize(size)
	if err != nil {
		errs = append(errs, err.(validation.ErrorList)...)
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		errs = append(errs, validation.Invalid("label_selector", selector, err.Error()))
	}
	if len(errs) > 0 {
		return store.ListQuery{}, errs
	}
	after, err := decodePageToken(token, namespace, sel.String())
	if err != nil {
		return store.ListQuery{}, err
	}
	return store.ListQuery{Namespace: namespace, After: after, Limit: limit, Selector: sel}, nil
}
