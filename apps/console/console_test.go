package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadSidecarMetrics(t *testing.T) {
	// As daprd 1.18.2 writes them (trimmed).
	const text = `# TYPE dapr_resiliency_cb_state gauge
dapr_resiliency_cb_state{app_id="orders",flow_direction="outbound",name="ordermesh",namespace="",policy="circuitbreaker",status="closed",target="app_users"} 0
dapr_resiliency_cb_state{app_id="orders",flow_direction="outbound",name="ordermesh",namespace="",policy="circuitbreaker",status="open",target="app_users"} 1
dapr_resiliency_cb_state{app_id="orders",flow_direction="outbound",name="ordermesh",namespace="",policy="circuitbreaker",status="closed",target="app_products"} 1
dapr_resiliency_cb_state{app_id="orders",flow_direction="outbound",name="other",namespace="",policy="circuitbreaker",status="half-open",target="app_products"} 1
dapr_resiliency_cb_state{app_id="orders",flow_direction="inbound",name="ordermesh",namespace="",policy="circuitbreaker",status="open",target="app_gateway"} 1
dapr_resiliency_cb_state{app_id="orders",flow_direction="outbound",name="ordermesh",namespace="",policy="circuitbreaker",status="open",target="component_orderstore_output"} 1
# TYPE dapr_runtime_component_init_fail_total counter
dapr_runtime_component_init_fail_total{app_id="orders",component="state.postgresql",component_name="orderstore",reason="init"} 1
# TYPE dapr_component_pubsub_ingress_count counter
dapr_component_pubsub_ingress_count{app_id="notifications",component="orderpubsub",namespace="",process_status="success",status="success",topic="orders"} 5
dapr_component_pubsub_ingress_count{app_id="notifications",component="orderpubsub",namespace="",process_status="drop",status="success",topic="orders"} 2
dapr_component_pubsub_ingress_count{app_id="notifications",component="orderpubsub",namespace="",process_status="success",status="success",topic="deadletters"} 2
`
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	m := readSidecarMetrics(families)
	assert.Equal(t, map[string]string{"users": "open", "products": "half-open"}, m.Breakers,
		"outbound app breakers only; the current state of each; the worst of several resources")
	assert.Equal(t, []string{"orderstore (init)"}, m.FailedComponents)
	assert.Equal(t, map[string]float64{"orders": 2}, m.Dropped)
	assert.Equal(t, map[string]float64{"orders": 7, "deadletters": 2}, m.Received)
}

func TestReadRunFileAndPrometheusConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dapr.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`version: 1
apps:
  - appID: gateway
    appDirPath: ./apps/gateway
    appPort: 8080
    daprHTTPPort: 3500
    daprGRPCPort: 3600
    metricsPort: 9090
  - appID: users
    appDirPath: /abs/users
    appPort: 8081
    daprHTTPPort: 3501
    metricsPort: 9091
`), 0o644))
	apps, err := ReadRunFile(path)
	require.NoError(t, err)
	require.Len(t, apps, 2)
	assert.Equal(t, App{ID: "gateway", AppPort: 8080, HTTPPort: 3500, GRPCPort: 3600, MetricsPort: 9090, Dir: filepath.Join(dir, "apps/gateway")}, apps[0])
	assert.Equal(t, "/abs/users", apps[1].Dir)

	cfg := PrometheusConfig(apps, 5*time.Second)
	for _, target := range []string{"127.0.0.1:9090", "127.0.0.1:9091", "127.0.0.1:8080", "127.0.0.1:8081"} {
		assert.Contains(t, cfg, "'"+target+"'")
	}
	assert.Contains(t, cfg, "scrape_interval: 5s")

	for _, bad := range []string{"apps: []\n", "apps:\n  - appID: x\n", "not: [yaml"} {
		require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
		_, err := ReadRunFile(path)
		assert.Error(t, err, bad)
	}
}

func TestTimeline(t *testing.T) {
	span := func(id, parent string, start, dur int64, proc string) JaegerSpan {
		s := JaegerSpan{SpanID: id, StartTime: start, Duration: dur, ProcessID: proc, OperationName: "op-" + id}
		if parent != "" {
			s.References = append(s.References, struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			}{"CHILD_OF", parent})
		}
		return s
	}
	tr := JaegerTrace{
		TraceID: "t",
		Spans: []JaegerSpan{
			span("c", "b", 1_300, 100, "p2"),
			span("b", "a", 1_100, 500, "p2"),
			span("a", "gateway-own", 1_000, 1_000, "p1"), // its parent was never exported
			span("d", "a", 1_200, 50, "p3"),
		},
		Processes: map[string]JaegerProcess{"p1": {"gateway"}, "p2": {"orders"}, "p3": {"users"}},
	}
	rows, total := timeline(tr)
	require.Len(t, rows, 4)
	var order []string
	for _, r := range rows {
		order = append(order, r.Span.SpanID+"@"+r.Service+":"+string(rune('0'+r.Depth)))
	}
	assert.Equal(t, []string{"a@gateway:0", "b@orders:1", "c@orders:2", "d@users:1"}, order)
	assert.Equal(t, time.Millisecond, total)
	assert.Equal(t, 300*time.Microsecond, rows[2].Offset)
	svg := string(traceSVG(TraceView{Found: true, Rows: rows, Total: total}))
	assert.Equal(t, 4, strings.Count(svg, `<g class="span`))
}

func TestTracePageRejectsBadIDs(t *testing.T) {
	c := &Console{Jaeger: &Jaeger{Base: "http://127.0.0.1:1", Client: http.DefaultClient}, Sidecars: &Sidecars{Client: http.DefaultClient}, Logs: &Logs{MaxBytes: 1 << 20}}
	h := routes(slog.New(slog.DiscardHandler), c)
	for _, id := range []string{"xyz", "4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e47", "4bf92f3577b34da6a3ce929d0e0e473g", "%3Cscript%3E"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/traces/"+id, nil))
		assert.Equal(t, http.StatusBadRequest, w.Code, id)
		assert.Contains(t, w.Body.String(), `"code":"invalid_request"`)
	}
}

func TestLogsForTrace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "orders_app_1.log")
	require.NoError(t, os.WriteFile(file, []byte(`{"time":"2026-11-29T10:00:00.2Z","level":"DEBUG","msg":"request","trace_id":"aaaa"}
not json at all
{"time":"2026-11-29T10:00:00.1Z","level":"WARN","msg":"dependency unavailable","trace_id":"aaaa"}
{"time":"2026-11-29T10:00:00.3Z","level":"DEBUG","msg":"request","trace_id":"bbbb"}
`), 0o644))
	l := &Logs{MaxBytes: 1 << 20}
	assert.Equal(t, file, l.File(App{ID: "orders"}, Metadata{Extended: map[string]string{"appLogPath": file}}))
	lines := l.ForTrace("orders", file, "aaaa")
	SortLines(lines)
	require.Len(t, lines, 2)
	assert.Equal(t, "dependency unavailable", lines[0].Msg)
	assert.Equal(t, "request", lines[1].Msg)
}

func TestTopologyColumns(t *testing.T) {
	apps := []AppView{{App: App{ID: "gateway"}}, {App: App{ID: "orders"}}, {App: App{ID: "users"}}, {App: App{ID: "notifications"}, AppError: "down", Problems: []string{"app not ready"}}}
	edges := []Edge{
		{From: "gateway", To: "orders", Kind: "invoke", Total: 3},
		{From: "gateway", To: "users", Kind: "invoke", Total: 1},
		{From: "orders", To: "users", Kind: "invoke", Total: 3, Errors: 1},
		{From: "orders", To: "topic:orders", Kind: "publish", Total: 3},
		{From: "topic:orders", To: "notifications", Kind: "consume", Total: 3},
	}
	svg := string(topologySVG(Snapshot{Apps: apps, Edges: edges}))
	x := func(node string) string {
		i := strings.Index(svg, `data-node="`+node+`"><rect x="`)
		require.GreaterOrEqual(t, i, 0, node)
		rest := svg[i+len(`data-node="`+node+`"><rect x="`):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	assert.Equal(t, "20", x("gateway"), "nobody calls the gateway")
	assert.Equal(t, "320", x("orders"))
	assert.Equal(t, "320", x("users"))
	assert.Equal(t, "620", x("topic:orders"), "topics right of the apps")
	assert.Equal(t, "920", x("notifications"), "only a consumer: right of the topics")
	assert.Contains(t, svg, `<g class="edge invoke failing" data-from="orders" data-to="users"`)
	assert.Contains(t, svg, `<g class="node app unhealthy" data-node="notifications">`)
	assert.Equal(t, 5, strings.Count(svg, `<g class="edge `))
}
