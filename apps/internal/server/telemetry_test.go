package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// requestCount reads the request histogram's count for one series from the
// router's own /metrics.
func requestCount(t *testing.T, h http.Handler, method, route, status string) uint64 {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, w.Code)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(w.Body)
	require.NoError(t, err)
	fam, ok := families["http_server_request_duration_seconds"]
	if !ok {
		return 0
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["method"] == method && labels["route"] == route && labels["status"] == status {
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func TestMiddlewareCountsRequestsByRouteTemplate(t *testing.T) {
	r := server.NewRouter(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	r.HandleFunc("/gadgets/{id}", func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusCreated, map[string]string{})
	}).Methods(http.MethodPost)
	h := server.Handler(slog.New(slog.DiscardHandler), r)

	tests := []struct {
		name, method, path, route, status string
	}{
		{"ids do not make series", http.MethodPost, "/gadgets/42", "/gadgets/{id}", "201"},
		{"another id, the same series", http.MethodPost, "/gadgets/43", "/gadgets/{id}", "201"},
		{"unknown paths share one series", http.MethodGet, "/no/such/thing", telemetry.UnmatchedRoute, "404"},
		{"a made-up verb", "BREW", "/gadgets/1", telemetry.UnmatchedRoute, "405"},
		{"health probes are counted", http.MethodGet, "/readyz", "/readyz", "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "BREW" {
				method = "other"
			}
			before := requestCount(t, h, method, tt.route, tt.status)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			require.Equal(t, tt.status, strconv.Itoa(w.Code))
			assert.Equal(t, before+1, requestCount(t, h, method, tt.route, tt.status))
		})
	}
}

func TestMiddlewareCountsErrorsByCode(t *testing.T) {
	r := server.NewRouter(http.NotFoundHandler())
	r.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, r, slog.New(slog.DiscardHandler), api.Errorf(api.CodeInsufficientStock, "only 2 left"))
	}).Methods(http.MethodPost)
	h := server.Handler(slog.New(slog.DiscardHandler), r)
	count := func() float64 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(w.Body)
		require.NoError(t, err)
		for _, m := range families["http_server_errors_total"].GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["route"] == "/orders" && l["code"] == string(api.CodeInsufficientStock) && l["method"] == http.MethodPost {
				return m.GetCounter().GetValue()
			}
		}
		return 0
	}
	before := count()
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/orders", nil))
	}
	assert.Equal(t, before+2, count())
}

func TestMiddlewareJoinsTheTrace(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name, incoming string
		wantJoined     bool
	}{
		{"a sidecar's traceparent is joined", parent, true},
		{"none starts a trace", "", false},
		{"a bad one starts a trace", "00-zz-00-01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			var inCtx, inHeader string
			h := server.Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx = telemetry.TraceID(r.Context())
				inHeader = r.Header.Get("traceparent")
				log.WarnContext(r.Context(), "something the handler says")
				w.WriteHeader(http.StatusNoContent)
			}))
			r := httptest.NewRequest(http.MethodGet, "/things", nil)
			if tt.incoming != "" {
				r.Header.Set("traceparent", tt.incoming)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)

			require.Len(t, inCtx, 32)
			if tt.wantJoined {
				assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", inCtx)
			}
			// A handler that forwards the request's headers passes the trace on.
			fwd, ok := telemetry.ParseTraceparent(inHeader)
			require.True(t, ok, inHeader)
			assert.Equal(t, inCtx, fwd.TraceID)
			// Every line of the request carries its trace id.
			lines := bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n"))
			require.Len(t, lines, 2, logs.String())
			for _, l := range lines {
				var entry map[string]any
				require.NoError(t, json.Unmarshal(l, &entry))
				assert.Equal(t, inCtx, entry["trace_id"], string(l))
			}
		})
	}
}

func TestMetricsAreOpenWithoutTheAppToken(t *testing.T) {
	h := server.RequireAppToken("s3cret", server.Handler(slog.New(slog.DiscardHandler), server.NewRouter(http.NotFoundHandler())))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), "go_goroutines")
	assert.NotContains(t, w.Body.String(), "s3cret")
}
