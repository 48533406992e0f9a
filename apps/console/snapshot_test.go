package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeApp is one app and its sidecar on one port: /readyz is the app's,
// /v1.0/... the sidecar's API, /metrics the sidecar's metrics.
func fakeApp(t *testing.T, id string, ready bool, metrics string) App {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			if !ready {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case "/v1.0/healthz":
			w.WriteHeader(http.StatusNoContent)
		case "/v1.0/metadata":
			if r.Header.Get("dapr-api-token") != "s3cret-dapr-token" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"id":"` + id + `","runtimeVersion":"1.18.2","components":[{"name":"statestore","type":"state.redis","version":"v1"}],
				"subscriptions":[{"pubsubname":"orderpubsub","topic":"orders","deadLetterTopic":"deadletters","rules":[{"path":"/events/orders"}]}]}`))
		case "/metrics":
			_, _ = w.Write([]byte(metrics))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	p, _ := strconv.Atoi(port)
	return App{ID: id, AppPort: p, HTTPPort: p, MetricsPort: p}
}

// TestSnapshotMarksWhatIsUnhealthy checks every kind of mark: an app not
// ready, a breaker open, a component that failed, a dead letter, and
// Prometheus and Jaeger not answering (shown, not fatal).
func TestSnapshotMarksWhatIsUnhealthy(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	prom, err := NewPrometheus(down.URL)
	require.NoError(t, err)
	c := &Console{
		Apps: []App{
			fakeApp(t, "gateway", true, ""),
			fakeApp(t, "users", false, ""),
			fakeApp(t, "orders", true, `dapr_resiliency_cb_state{flow_direction="outbound",policy="circuitbreaker",status="open",target="app_users"} 1
dapr_runtime_component_init_fail_total{component="state.postgresql",component_name="orderstore",reason="init"} 1
`),
			fakeApp(t, "notifications", true, `dapr_component_pubsub_ingress_count{process_status="success",topic="deadletters"} 2
`),
		},
		Sidecars:   &Sidecars{Client: http.DefaultClient, Token: "s3cret-dapr-token"},
		Prometheus: prom,
		Jaeger:     &Jaeger{Base: down.URL, Client: http.DefaultClient},
		Logs:       &Logs{MaxBytes: 1 << 20},
		Log:        slog.New(slog.DiscardHandler),
	}
	snap := c.Snapshot(context.Background())

	healthy := map[string]bool{}
	for _, a := range snap.Apps {
		healthy[a.ID] = a.Healthy()
		assert.Equal(t, "1.18.2", a.Version, "%s: the metadata, read with the token", a.ID)
	}
	assert.Equal(t, map[string]bool{"gateway": true, "users": false, "orders": false, "notifications": true}, healthy)
	assert.Equal(t, []Breaker{{Caller: "orders", Target: "users", State: "open"}}, snap.Breakers)
	assert.Equal(t, []DeadLetter{{App: "notifications", Topic: "deadletters", Count: 2, Kind: "received"}}, snap.DeadLetters)
	problems := strings.Join(snap.Problems, "\n")
	for _, want := range []string{"breaker orders → users is open", "users: app not ready", "orders: component failed to load: orderstore (init)", "notifications holds 2 dead letter(s)"} {
		assert.Contains(t, problems, want)
	}
	assert.NotEmpty(t, snap.EdgesError, "Prometheus down is shown")
	assert.NotEmpty(t, snap.OrdersError, "Jaeger down is shown")

	// And the page renders all of it.
	w := httptest.NewRecorder()
	routes(slog.New(slog.DiscardHandler), c).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	assert.Contains(t, body, `data-breaker="orders→users" data-state="open"`)
	assert.Contains(t, body, `<tr data-app="users" data-healthy="false" class="unhealthy">`)
	assert.Contains(t, body, `class="node app unhealthy" data-node="users"`)
	assert.NotContains(t, body, "s3cret-dapr-token", "no token on the page")
}
