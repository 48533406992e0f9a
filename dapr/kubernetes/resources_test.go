package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// serverFields are the component settings that say where a server is and how
// to log in: the only ones a Kubernetes variant may set differently.
var serverFields = map[string]bool{"redisHost": true, "redisPassword": true, "connectionString": true}

// credentialFields must come from a Kubernetes Secret, never inline.
var credentialFields = map[string]bool{"redisPassword": true, "connectionString": true}

// TestKubernetesResourcesMatch holds the Dapr resources the manifests deploy
// to the self-hosted files `dapr run -f .`, compose and the end-to-end tests
// use: the same resources, names, scopes and settings. Only where the
// servers are (and their credentials, which come from Secrets), the
// namespace and trust domain of the access policies, and the Configuration's
// mTLS settings (the control plane's on Kubernetes) differ.
func TestKubernetesResourcesMatch(t *testing.T) {
	root := repoRoot(t)
	tests := []struct {
		selfHosted string
		kubernetes string
	}{
		{"dapr/config.yaml", "dapr/kubernetes/base/dapr/configuration.yaml"},
		{"resiliency.yaml", "dapr/kubernetes/base/dapr/resiliency.yaml"},
		{"dapr/resources/resiliency-edge.yaml", "dapr/kubernetes/base/dapr/resiliency-edge.yaml"},
		{"dapr/resources/subscriptions.yaml", "dapr/kubernetes/base/dapr/subscriptions.yaml"},
		{"components/state/statestore.yaml", "dapr/kubernetes/base/dapr/statestore.yaml"},
		{"components/state/orderstore.yaml", "dapr/kubernetes/base/dapr/orderstore.yaml"},
		{"components/pubsub/redis/orderpubsub.yaml", "dapr/kubernetes/overlays/redis/orderpubsub.yaml"},
		{"components/pubsub/rabbitmq/orderpubsub.yaml", "dapr/kubernetes/overlays/rabbitmq/orderpubsub.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.kubernetes, func(t *testing.T) {
			want := loadDocs(t, filepath.Join(root, tt.selfHosted))
			got := loadDocs(t, filepath.Join(root, tt.kubernetes))
			require.Len(t, got, len(want), "documents")
			for i := range want {
				assertKubernetesVariant(t, got[i])
				assert.Equal(t, normalize(want[i]), normalize(got[i]),
					"%s differs from %s beyond servers, credentials, namespace and trust domain", tt.kubernetes, tt.selfHosted)
			}
		})
	}
}

// TestKubernetesResourcesCovered fails when a component or Dapr resource is
// added to the self-hosted files without a Kubernetes variant.
func TestKubernetesResourcesCovered(t *testing.T) {
	root := repoRoot(t)
	for dir, variant := range map[string]string{
		"components/state":           "dapr/kubernetes/base/dapr",
		"components/pubsub/redis":    "dapr/kubernetes/overlays/redis",
		"components/pubsub/rabbitmq": "dapr/kubernetes/overlays/rabbitmq",
		"dapr/resources":             "dapr/kubernetes/base/dapr",
	} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		require.NoError(t, err)
		require.NotEmpty(t, files, dir)
		for _, f := range files {
			assert.FileExists(t, filepath.Join(root, variant, filepath.Base(f)), "%s has no Kubernetes variant", f)
		}
	}
}

// TestAppDeployments checks what the cluster's guarantees rest on: every app
// has two replicas or more, its Dapr app id, and a PodDisruptionBudget.
func TestAppDeployments(t *testing.T) {
	root := repoRoot(t)
	for _, app := range []string{"gateway", "users", "products", "orders", "payments", "notifications"} {
		t.Run(app, func(t *testing.T) {
			docs := loadDocs(t, filepath.Join(root, "dapr/kubernetes/base/apps", app+".yaml"))
			kinds := map[string]map[string]any{}
			for _, d := range docs {
				kinds[fmt.Sprint(d["kind"])] = d
			}
			dep := kinds["Deployment"]
			require.NotNil(t, dep, "Deployment")
			replicas, _ := dig(dep, "spec", "replicas").(int)
			assert.GreaterOrEqual(t, replicas, 2, "replicas")
			assert.Equal(t, app, dig(dep, "spec", "template", "metadata", "annotations", "dapr.io/app-id"))
			assert.Equal(t, "service", dig(dep, "metadata", "labels", "app.kubernetes.io/component"),
				"the label kustomization.yaml's common pod patch selects")
			assert.NotNil(t, kinds["PodDisruptionBudget"], "PodDisruptionBudget")
		})
	}
}

// The namespace the manifests deploy to and the trust domain of the
// sidecars' identities there (spiffe://cluster.local/ns/ordermesh/<app-id>).
const (
	namespace   = "ordermesh"
	trustDomain = "cluster.local"
)

// assertKubernetesVariant checks that a component takes its credentials from
// Secrets, and that the access policies name the cluster's namespace and
// trust domain.
func assertKubernetesVariant(t *testing.T, doc map[string]any) {
	t.Helper()
	if doc["kind"] == "Configuration" {
		assert.Nil(t, dig(doc, "spec", "mtls"), "mTLS is the control plane's on Kubernetes (an app Configuration with spec.mtls is refused)")
	}
	if ac, ok := dig(doc, "spec", "accessControl").(map[string]any); ok {
		assert.Equal(t, trustDomain, ac["trustDomain"])
		policies, _ := ac["policies"].([]any)
		for _, p := range policies {
			assert.Equal(t, trustDomain, dig(p, "trustDomain"), "policy %v", dig(p, "appId"))
			assert.Equal(t, namespace, dig(p, "namespace"), "policy %v", dig(p, "appId"))
		}
	}
	if doc["kind"] != "Component" {
		return
	}
	items, _ := dig(doc, "spec", "metadata").([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		name := fmt.Sprint(m["name"])
		if credentialFields[name] {
			assert.NotContains(t, m, "value", "%s must not be inline", name)
			assert.NotNil(t, dig(m, "secretKeyRef", "name"), "%s must come from a Secret (secretKeyRef)", name)
		}
	}
}

// normalize blanks what may differ between a self-hosted resource and its
// Kubernetes variant.
func normalize(doc map[string]any) map[string]any {
	out := deepCopy(doc).(map[string]any)
	delete(out, "auth")
	if spec, ok := out["spec"].(map[string]any); ok && out["kind"] == "Configuration" {
		// Kubernetes: mTLS is the control plane's (Dapr's chart, daprsystem).
		delete(spec, "mtls")
		// Tracing needs a collector's address on Kubernetes (the CRD wants
		// otel.endpointAddress), and the dev cluster runs none: off there.
		delete(spec, "tracing")
	}
	if items, ok := dig(out, "spec", "metadata").([]any); ok {
		for _, it := range items {
			if m, ok := it.(map[string]any); ok && serverFields[fmt.Sprint(m["name"])] {
				delete(m, "value")
				delete(m, "secretKeyRef")
				m["server"] = true
			}
		}
	}
	if ac, ok := dig(out, "spec", "accessControl").(map[string]any); ok {
		ac["trustDomain"] = "<trust domain>"
		policies, _ := ac["policies"].([]any)
		for _, p := range policies {
			if m, ok := p.(map[string]any); ok {
				m["trustDomain"] = "<trust domain>"
				m["namespace"] = "<namespace>"
			}
		}
	}
	return out
}

func loadDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, path)
		if d != nil {
			docs = append(docs, d)
		}
	}
	require.NotEmpty(t, docs, path)
	return docs
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
