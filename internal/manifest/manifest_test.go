// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

func decodeFile(t *testing.T, name string) []Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestKubernetesCorpus: each document of the corpus maps to the object
// svcreg stores, and its ignored fields are named.
func TestKubernetesCorpus(t *testing.T) {
	tests := []struct {
		file     string
		want     []string // each object as protojson
		warnings []string // substrings of the joined warnings
	}{{
		file: "kubernetes/list.yaml",
		want: []string{
			`{"name":"web","namespace":"shop","labels":{"app":"web"},"annotations":{"team":"storefront"},"selector":{"app":"web"},"type":"SERVICE_TYPE_CLUSTER_IP","clusterIp":"10.96.0.40","ports":[{"name":"http","protocol":"PROTOCOL_TCP","port":80,"targetPort":"http"},{"name":"metrics","protocol":"PROTOCOL_TCP","port":9090,"targetPort":"9090"}],"sessionAffinity":"SESSION_AFFINITY_NONE","internalTrafficPolicy":"INTERNAL_TRAFFIC_POLICY_CLUSTER"}`,
			`{"name":"db","namespace":"shop","selector":{"app":"db"},"type":"SERVICE_TYPE_CLUSTER_IP","clusterIp":"None","ports":[{"name":"pg","protocol":"PROTOCOL_TCP","port":5432,"targetPort":"5432"}],"sessionAffinity":"SESSION_AFFINITY_NONE","publishNotReadyAddresses":true}`,
		},
		warnings: []string{"Service shop/web: svcreg ignored", "last-applied-configuration", "metadata.uid", "metadata.resourceVersion",
			"metadata.creationTimestamp", "spec.ipFamilies", "spec.ipFamilyPolicy", "status", "Service shop/db"},
	}, {
		file: "kubernetes/multi.yaml",
		want: []string{
			`{"name":"gateway","namespace":"edge","selector":{"app":"gateway"},"type":"SERVICE_TYPE_NODE_PORT","ports":[{"name":"https","port":443,"targetPort":"8443","nodePort":30443},{"name":"dns","protocol":"PROTOCOL_UDP","port":53}]}`,
			`{"name":"search","namespace":"edge","type":"SERVICE_TYPE_EXTERNAL_NAME","externalName":"search.example.com"}`,
		},
		warnings: []string{"Service edge/gateway: svcreg ignored spec.externalTrafficPolicy"},
	}, {
		file: "kubernetes/endpoints.yaml",
		want: []string{
			`{"name":"legacy-db","namespace":"ops","ports":[{"name":"pg","port":5432}]}`,
			`[{"instance":"db-a","ip":"192.168.10.5","ports":[{"name":"pg","port":5432,"protocol":"PROTOCOL_TCP"}],"ready":true,"serving":true,"node":"rack-1","hostname":"db-a"},` +
				`{"instance":"db-b","ip":"192.168.10.6","ports":[{"name":"pg","port":5432,"protocol":"PROTOCOL_TCP"}],"ready":true,"serving":true},` +
				`{"instance":"ip-192-168-10-7","ip":"192.168.10.7","ports":[{"name":"pg","port":5432,"protocol":"PROTOCOL_TCP"}],"ready":false,"serving":false}]`,
		},
	}, {
		file: "kubernetes/endpointslice.yaml",
		want: []string{
			`{"name":"cache","namespace":"ops","ports":[{"name":"redis","port":6379}]}`,
			`[{"instance":"cache-0","ip":"10.1.0.11","ports":[{"name":"redis","port":6379,"protocol":"PROTOCOL_TCP"}],"ready":true,"serving":true,"zone":"eu-west-1a","node":"node-a"},` +
				`{"instance":"cache-1","ip":"10.1.0.12","ports":[{"name":"redis","port":6379,"protocol":"PROTOCOL_TCP"}],"ready":false,"serving":true,"terminating":true,"zone":"eu-west-1b"},` +
				`{"instance":"cache-2","ip":"10.1.0.13","ports":[{"name":"redis","port":6379,"protocol":"PROTOCOL_TCP"}],"ready":true,"serving":true}]`,
		},
		warnings: []string{"endpoints[1].hints", "metadata.generateName", "metadata.labels[endpointslice.kubernetes.io/managed-by]"},
	}, {
		file: "kubernetes/affinity.json",
		want: []string{
			`{"name":"session","namespace":"shop","selector":{"app":"session"},"type":"SERVICE_TYPE_LOAD_BALANCER","ports":[{"port":8080,"targetPort":"8080","appProtocol":"http"}],"sessionAffinity":"SESSION_AFFINITY_CLIENT_IP","sessionAffinityTimeoutSeconds":600}`,
		},
		warnings: []string{"spec.loadBalancerSourceRanges"},
	}, {
		// A pod's readinessProbe becomes the instance's, which svcreg runs.
		// (Not in the console's corpus: its address is not loopback, and
		// the console test's registry would probe it.)
		file: "pods/pod.yaml",
		want: []string{
			`{"name":"web-7d9f8-abcde","namespace":"shop","labels":{"app":"web","pod-template-hash":"7d9f8"},"ip":"10.244.1.17",` +
				`"ports":[{"name":"http","port":8080,"protocol":"PROTOCOL_TCP"},{"name":"grpc","port":9090}],"node":"node-a","hostname":"web-0","subdomain":"web",` +
				`"readinessProbe":{"httpGet":{"path":"/healthz","port":"http","scheme":"HTTP","httpHeaders":[{"name":"X-Probe","value":"svcreg"}]},` +
				`"initialDelaySeconds":5,"periodSeconds":10,"timeoutSeconds":2,"successThreshold":1,"failureThreshold":3}}`,
		},
		warnings: []string{"Pod shop/web-7d9f8-abcde: svcreg ignored", "metadata.annotations[kubectl.kubernetes.io/restartedAt]",
			"metadata.ownerReferences", "spec.containers[0].image", "spec.containers[0].livenessProbe", "spec.containers[1].image",
			"spec.restartPolicy", "status.conditions (svcreg's own run of the readiness probe decides)", "status.phase"},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			objs := decodeFile(t, tt.file)
			if len(objs) != len(tt.want) {
				t.Fatalf("%d objects, want %d", len(objs), len(tt.want))
			}
			var warnings []string
			for i, obj := range objs {
				warnings = append(warnings, obj.Warnings...)
				got := objectJSON(t, obj)
				if !jsonEqual(t, got, tt.want[i]) {
					t.Errorf("object %d:\n got %s\nwant %s", i, got, tt.want[i])
				}
			}
			joined := strings.Join(warnings, "\n")
			for _, w := range tt.warnings {
				if !strings.Contains(joined, w) {
					t.Errorf("warnings do not name %q:\n%s", w, joined)
				}
			}
			if len(tt.warnings) == 0 && joined != "" {
				t.Errorf("unexpected warnings:\n%s", joined)
			}
		})
	}
}

func objectJSON(t *testing.T, obj Object) string {
	t.Helper()
	if obj.Endpoints == nil {
		var msg proto.Message = obj.Service
		if obj.Instance != nil {
			msg = obj.Instance
		}
		b, err := protojson.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	parts := make([]string, len(obj.Endpoints.Endpoints))
	for i, ep := range obj.Endpoints.Endpoints {
		b, err := protojson.Marshal(ep)
		if err != nil {
			t.Fatal(err)
		}
		parts[i] = string(b)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// jsonEqual compares protojson output, whose spacing is not stable.
func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	return strings.ReplaceAll(got, " ", "") == strings.ReplaceAll(want, " ", "")
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", "apiVersion and kind are required"},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deployment\n", "apps/v1 Deployment is not a kind svcreg applies"},
		{"bad type", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: Headless}\n", `spec.type: "Headless" is not one of ClusterIP, ExternalName, LoadBalancer, NodePort`},
		{"bad port", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: http}]}\n", "spec.ports[0].port: want a whole number"},
		{"bad targetPort", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80, targetPort: [1]}]}\n", "spec.ports[0].targetPort: want a port number or a port name"},
		{"pod without address", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n", "status.podIP: required"},
		{"exec probe", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, readinessProbe: {exec: {command: [true]}}}]}\nstatus: {podIP: 10.0.0.1}\n",
			"spec.containers[0].readinessProbe.exec: an exec probe runs inside the container"},
		{"two probes", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, readinessProbe: {tcpSocket: {port: 1}}}, {name: d, readinessProbe: {tcpSocket: {port: 2}}}]}\nstatus: {podIP: 10.0.0.1}\n",
			"spec.containers[1].readinessProbe: an instance has one readiness probe and spec.containers[0].readinessProbe has one already"},
		{"slice without service", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: a}\naddressType: IPv4\n", "kubernetes.io/service-name"},
		{"fqdn slice", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: a, labels: {kubernetes.io/service-name: s}}\naddressType: FQDN\n", "FQDN endpoints are not supported"},
		{"own unknown field", "apiVersion: svcreg.io/v1\nkind: Service\nname: a\nclusterIP: None\n", `unknown field "clusterIP"`},
		{"scalar document", "just text\n", "a document is a mapping"},
		{"bad yaml", "apiVersion: v1\nkind: [\n", "in.yaml#1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("in.yaml", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestOwnRoundTrip: what Encode writes, Decode reads back unchanged.
func TestOwnRoundTrip(t *testing.T) {
	svc := &svcregv1.Service{Name: "web", Namespace: "shop", Selector: map[string]string{"app": "web"}, ClusterIp: "10.96.0.9",
		Ports: []*svcregv1.ServicePort{{Name: "http", Port: 80, TargetPort: "http"}}, Scheduler: "wlc", ResourceVersion: 1 << 40}
	inst := &svcregv1.Instance{Name: "web-1", Namespace: "shop", Ip: "10.0.0.1", Ready: proto.Bool(false), Weight: proto.Uint32(3),
		Ports: []*svcregv1.InstancePort{{Name: "http", Port: 8080}}}
	for _, asJSON := range []bool{false, true} {
		for _, msgs := range [][]proto.Message{{svc}, {svc, inst}} {
			var buf bytes.Buffer
			if err := Encode(&buf, msgs, false, asJSON); err != nil {
				t.Fatal(err)
			}
			objs, err := Decode("out", buf.Bytes())
			if err != nil {
				t.Fatalf("%v\n%s", err, buf.String())
			}
			if len(objs) != len(msgs) {
				t.Fatalf("%d objects, want %d", len(objs), len(msgs))
			}
			for i, obj := range objs {
				var got proto.Message = obj.Service
				if obj.Instance != nil {
					got = obj.Instance
				}
				if !proto.Equal(got, msgs[i]) {
					t.Errorf("round trip (json %v): got %v, want %v", asJSON, got, msgs[i])
				}
				if len(obj.Warnings) > 0 {
					t.Errorf("warnings on svcreg's own document: %v", obj.Warnings)
				}
			}
		}
	}
}

// FuzzDecode: any input decodes or fails with an error, never a panic.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: svcreg.io/v1\nkind: Instance\nname: a\nip: 10.0.0.1\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode("fuzz", data)
		if err != nil {
			return
		}
		for _, obj := range objs {
			_ = obj.Kind().Document() + obj.Namespace() + obj.Name()
		}
	})
}
