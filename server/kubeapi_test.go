// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

//lint:file-ignore SA1019 v1 Endpoints, deprecated in Kubernetes 1.33, is served on purpose: kube-proxy's and CoreDNS's older releases and many tools still read it

package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

// kubeClient is client-go against a test server's HTTP port, speaking
// JSON or Kubernetes' protobuf.
func kubeClient(t *testing.T, ts *testServer, protobuf bool, token string) kubernetes.Interface {
	t.Helper()
	cfg := &rest.Config{Host: ts.base, BearerToken: token, QPS: -1} // no client-side throttling
	if protobuf {
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// informerLog records what an informer's handlers saw, as "ADDED shop/web"
// lines, and lets a test wait for one.
type informerLog struct {
	mu      sync.Mutex
	seen    []string
	objects map[string]any // the latest object per line's key
	changed chan struct{}
}

func newInformerLog() *informerLog {
	return &informerLog{objects: map[string]any{}, changed: make(chan struct{}, 1)}
}

func (l *informerLog) record(what string, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m := obj.(metav1.Object)
	key := m.GetNamespace() + "/" + m.GetName()
	l.mu.Lock()
	l.seen = append(l.seen, what+" "+key)
	l.objects[key] = obj
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *informerLog) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { l.record("ADDED", obj) },
		UpdateFunc: func(_, obj any) { l.record("MODIFIED", obj) },
		DeleteFunc: func(obj any) { l.record("DELETED", obj) },
	}
}

// waitFor waits until line was seen (and check, when set, holds of the
// object), or fails after a generous bound: it waits on events, the
// bound only ends a broken run.
func (l *informerLog) waitFor(t *testing.T, line string, check func(any) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		for _, s := range l.seen {
			if s == line {
				_, key, _ := cutLast(line)
				if check == nil || check(l.objects[key]) {
					l.mu.Unlock()
					return
				}
			}
		}
		seen := fmt.Sprint(l.seen)
		l.mu.Unlock()
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("never saw %q; saw %s", line, seen)
		}
	}
}

func cutLast(line string) (string, string, bool) {
	for i := len(line) - 1; i >= 0; i-- {
		if line[i] == ' ' {
			return line[:i], line[i+1:], true
		}
	}
	return "", line, false
}

// TestKubernetesInformers runs client-go's shared informers for the four
// kinds against a real server, in JSON and in protobuf: the initial list,
// then adds, updates and deletes made through svcreg's own API.
func TestKubernetesInformers(t *testing.T) {
	t.Parallel()
	for _, protobuf := range []bool{false, true} {
		t.Run(fmt.Sprintf("protobuf=%v", protobuf), func(t *testing.T) {
			ts := startServer(t, Config{})
			ts.mustCreateService(t, webSvc())
			first := webInst("web-1")
			first.Node, first.Zone = "node-1", "zone-a"
			ts.mustCreateInstance(t, first)

			factory := informers.NewSharedInformerFactory(kubeClient(t, ts, protobuf, ""), 0)
			logs := map[string]*informerLog{"services": newInformerLog(), "endpoints": newInformerLog(),
				"endpointslices": newInformerLog(), "namespaces": newInformerLog(), "nodes": newInformerLog()}
			for name, inf := range map[string]cache.SharedIndexInformer{
				"services":       factory.Core().V1().Services().Informer(),
				"endpoints":      factory.Core().V1().Endpoints().Informer(),
				"endpointslices": factory.Discovery().V1().EndpointSlices().Informer(),
				"namespaces":     factory.Core().V1().Namespaces().Informer(),
				"nodes":          factory.Core().V1().Nodes().Informer(),
			} {
				if _, err := inf.AddEventHandler(logs[name].handler()); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); factory.Shutdown() }()
			factory.Start(ctx.Done())
			for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
				if !ok {
					t.Fatalf("%v never synced", typ)
				}
			}
			logs["services"].waitFor(t, "ADDED shop/web", nil)
			logs["namespaces"].waitFor(t, "ADDED /shop", nil)
			logs["endpoints"].waitFor(t, "ADDED shop/web", func(o any) bool {
				e := o.(*corev1.Endpoints)
				return len(e.Subsets) == 1 && len(e.Subsets[0].Addresses) == 1 && e.Subsets[0].Addresses[0].IP == "127.0.0.1"
			})
			logs["endpointslices"].waitFor(t, "ADDED shop/web-0", func(o any) bool {
				e := o.(*discoveryv1.EndpointSlice).Endpoints
				return len(e) == 1 && *e[0].NodeName == "node-1" && *e[0].Zone == "zone-a"
			})
			logs["nodes"].waitFor(t, "ADDED /node-1", func(o any) bool {
				return o.(*corev1.Node).Labels[corev1.LabelTopologyZone] == "zone-a"
			})

			// An update: web-1 turns not ready.
			inst := webInst("web-1")
			inst.Node, inst.Zone, inst.Ready = "node-1", "zone-a", ptrTo(false)
			if _, err := ts.client.UpdateInstance(context.Background(), &svcregv1.UpdateInstanceRequest{Instance: inst}); err != nil {
				t.Fatal(err)
			}
			logs["endpoints"].waitFor(t, "MODIFIED shop/web", func(o any) bool {
				e := o.(*corev1.Endpoints)
				return len(e.Subsets) == 1 && len(e.Subsets[0].Addresses) == 0 && len(e.Subsets[0].NotReadyAddresses) == 1
			})
			logs["endpointslices"].waitFor(t, "MODIFIED shop/web-0", func(o any) bool {
				s := o.(*discoveryv1.EndpointSlice)
				return len(s.Endpoints) == 1 && !*s.Endpoints[0].Conditions.Ready
			})

			// An add in another namespace, then deletes.
			other := webSvc()
			other.Namespace = "other"
			ts.mustCreateService(t, other)
			logs["services"].waitFor(t, "ADDED other/web", nil)
			logs["namespaces"].waitFor(t, "ADDED /other", nil)
			logs["endpointslices"].waitFor(t, "ADDED other/web-0", nil)
			if _, err := ts.client.DeleteService(context.Background(), &svcregv1.DeleteServiceRequest{Namespace: "other", Name: "web"}); err != nil {
				t.Fatal(err)
			}
			logs["services"].waitFor(t, "DELETED other/web", nil)
			logs["endpoints"].waitFor(t, "DELETED other/web", nil)
			logs["endpointslices"].waitFor(t, "DELETED other/web-0", nil)
			logs["namespaces"].waitFor(t, "DELETED /other", nil)
			if _, err := ts.client.DeleteInstance(context.Background(), &svcregv1.DeleteInstanceRequest{Namespace: "shop", Name: "web-1"}); err != nil {
				t.Fatal(err)
			}
			logs["nodes"].waitFor(t, "DELETED /node-1", nil)
			logs["endpointslices"].waitFor(t, "MODIFIED shop/web-0", func(o any) bool { return len(o.(*discoveryv1.EndpointSlice).Endpoints) == 0 })
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestKubernetesWatchList: a watch with sendInitialEvents (KEP-3157) sends
// the objects, then a bookmark that says they ended; a watch from a
// revision the cache no longer holds ends with 410 Expired, which makes
// client-go list again.
func TestKubernetesWatchList(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{WatchHistory: 16})
	ts.mustCreateService(t, webSvc())
	ts.mustCreateInstance(t, webInst("web-1"))
	cs := kubeClient(t, ts, true, "")
	ctx := context.Background()

	yes := true
	w, err := cs.CoreV1().Services("shop").Watch(ctx, metav1.ListOptions{SendInitialEvents: &yes, AllowWatchBookmarks: true,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-w.ResultChan()
	if ev.Type != kwatch.Added || ev.Object.(*corev1.Service).Name != "web" {
		t.Fatalf("first event %v %T, want ADDED web", ev.Type, ev.Object)
	}
	ev = <-w.ResultChan()
	if ev.Type != kwatch.Bookmark || ev.Object.(*corev1.Service).Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("second event %v %+v, want the initial-events-end BOOKMARK", ev.Type, ev.Object)
	}
	start := ev.Object.(*corev1.Service).ResourceVersion
	w.Stop()

	// Enough changes to push the start out of the cache's history.
	for i := range 20 {
		ts.mustCreateInstance(t, webInst(fmt.Sprintf("web-%d", i+2)))
	}
	list, err := cs.DiscoveryV1().EndpointSlices("shop").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || len(list.Items[0].Endpoints) != 21 {
		t.Fatalf("list: %v, %+v", err, list)
	}
	w, err = cs.DiscoveryV1().EndpointSlices("shop").Watch(ctx, metav1.ListOptions{ResourceVersion: start})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev = <-w.ResultChan()
	if ev.Type != kwatch.Error || !apierrors.IsResourceExpired(apierrors.FromObject(ev.Object)) {
		t.Fatalf("watch from %s: %v %+v, want ERROR 410 Expired", start, ev.Type, ev.Object)
	}
}

// TestKubernetesWrites: creates, updates and deletes through the
// Kubernetes API are svcreg writes, with Kubernetes' status codes: 201, 409
// AlreadyExists, 409 Conflict on a stale resourceVersion, 422 naming the
// field, 403 for a reader, 405 for a kind svcreg derives.
func TestKubernetesWrites(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, Config{})
	ctx := context.Background()
	admin := kubeClient(t, as.testServer, true, as.bearer["admin"])
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "own"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	created, err := admin.CoreV1().Services("own").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil || created.Spec.ClusterIP == "" || created.ResourceVersion == "" {
		t.Fatalf("create: %v, %+v", err, created)
	}
	if _, err := admin.CoreV1().Services("own").Create(ctx, svc, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	stale := created.DeepCopy()
	created.Spec.Ports[0].Port = 81
	updated, err := admin.CoreV1().Services("own").Update(ctx, created, metav1.UpdateOptions{})
	if err != nil || updated.Spec.Ports[0].Port != 81 {
		t.Fatalf("update: %v, %+v", err, updated)
	}
	stale.Spec.Ports[0].Port = 82
	if _, err := admin.CoreV1().Services("own").Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update at a stale resourceVersion: %v, want Conflict", err)
	}
	bad := svc.DeepCopy()
	bad.Name, bad.Spec.Ports[0].Port = "bad", 70000
	if _, err := admin.CoreV1().Services("own").Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "port") {
		t.Errorf("create with port 70000: %v, want Invalid naming the port", err)
	}
	reader := kubeClient(t, as.testServer, false, as.bearer["reader"])
	if _, err := reader.CoreV1().Services("own").Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create by a reader: %v, want Forbidden", err)
	}
	if _, err := admin.DiscoveryV1().EndpointSlices("own").Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "x"},
		AddressType: discoveryv1.AddressTypeIPv4}, metav1.CreateOptions{}); !apierrors.IsMethodNotSupported(err) {
		t.Errorf("create an EndpointSlice: %v, want MethodNotAllowed", err)
	}
	if err := admin.CoreV1().Services("own").Delete(ctx, "api", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := admin.CoreV1().Services("own").Get(ctx, "api", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v, want NotFound", err)
	}
}

// TestKubernetesConcurrentReads: many readers encode the cache's shared
// objects at once, in both forms (under -race: the encoder stamps an
// object's kind while it encodes, so each must encode its own copy).
func TestKubernetesConcurrentReads(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ts.mustCreateService(t, webSvc())
	ts.mustCreateInstance(t, webInst("web-1"))
	clients := []kubernetes.Interface{kubeClient(t, ts, false, ""), kubeClient(t, ts, true, "")}
	var g errgroup.Group
	for i := range 8 {
		cs := clients[i%2]
		g.Go(func() error {
			for range 20 {
				if _, err := cs.CoreV1().Services("shop").Get(context.Background(), "web", metav1.GetOptions{}); err != nil {
					return err
				}
				if _, err := cs.DiscoveryV1().EndpointSlices("shop").List(context.Background(), metav1.ListOptions{}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}
