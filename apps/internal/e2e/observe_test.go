//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// observed is a system with what `make run` starts beside it: Jaeger
// receiving every sidecar's spans, Prometheus scraping every sidecar and app,
// and the console reading them all.
type observed struct {
	*harness.System
	JaegerURL, PrometheusURL, ConsoleURL string
}

// api calls the gateway's public API. Every test of this file goes through
// it, so a credential the API comes to require is added here, once.
func (o *observed) api(t *testing.T, method, path string, body any, headers ...string) response {
	t.Helper()
	return do(t, method, o.GatewayURL()+path, body, headers...)
}

// startObserved starts a system with tracing on (every request sampled,
// exported to a Jaeger of its own), apps logging each request (so each has a
// line per trace), then Jaeger, Prometheus (scraping every second) and the
// console.
func startObserved(t *testing.T, opts harness.Options) *observed {
	t.Helper()
	root := harness.RepoRoot(t)
	jaeger := toolPath(t, "ORDERMESH_JAEGER", filepath.Join(root, ".dapr", "bin", "jaeger"), "dapr/scripts/obs.sh build")
	prometheus := toolPath(t, "ORDERMESH_PROMETHEUS", "prometheus", "apt-get install prometheus")
	ports, err := harness.FreePorts(6)
	require.NoError(t, err)
	otlp, query, grpcPort, healthPort, promPort, consolePort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]

	opts.TraceEndpoint = "127.0.0.1:" + strconv.Itoa(otlp)
	if opts.Env == nil {
		opts.Env = map[string]map[string]string{}
	}
	for _, name := range harness.Apps {
		if opts.Env[name] == nil {
			opts.Env[name] = map[string]string{}
		}
		opts.Env[name]["LOG_LEVEL"] = "debug"
	}
	sys := harness.Start(t, opts)
	o := &observed{
		System:        sys,
		JaegerURL:     "http://127.0.0.1:" + strconv.Itoa(query),
		PrometheusURL: "http://127.0.0.1:" + strconv.Itoa(promPort),
		ConsoleURL:    "http://127.0.0.1:" + strconv.Itoa(consolePort),
	}

	sys.StartTool("jaeger", jaeger, []string{"--config", filepath.Join(root, "dapr", "observability", "jaeger.yaml")}, []string{
		"JAEGER_OTLP_PORT=" + strconv.Itoa(otlp), "JAEGER_QUERY_PORT=" + strconv.Itoa(query),
		"JAEGER_GRPC_PORT=" + strconv.Itoa(grpcPort), "JAEGER_HEALTH_PORT=" + strconv.Itoa(healthPort),
	})
	waitHTTP(t, o.JaegerURL+"/api/services")

	// The run file the console reads, as dapr.yaml would give it, and each
	// app's log file announced in its sidecar's metadata, as the Dapr CLI does.
	runFile := o.writeRunFile(t)
	for _, name := range harness.Apps {
		a := sys.App(name)
		res := do(t, http.MethodPut, a.SidecarURL()+"/v1.0/metadata/appLogPath", a.AppProc().LogPath, "dapr-api-token", sys.DaprToken)
		require.Equal(t, http.StatusNoContent, res.Status, "%s", res.Body)
	}

	console := consoleBinary(t)
	cmd := exec.Command(console, "-f", runFile, "-prometheus-config")
	cmd.Env = append(os.Environ(), "SCRAPE_INTERVAL=1s")
	promConfig, err := cmd.Output()
	require.NoError(t, err)
	promDir := filepath.Join(sys.Dir(), "prometheus")
	require.NoError(t, os.MkdirAll(promDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(promDir, "prometheus.yml"), promConfig, 0o644))
	sys.StartTool("prometheus", prometheus, []string{
		"--config.file=" + filepath.Join(promDir, "prometheus.yml"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(promPort),
		"--storage.tsdb.path=" + filepath.Join(promDir, "data"),
	}, nil)
	waitHTTP(t, o.PrometheusURL+"/-/ready")

	sys.StartTool("console", console, []string{"-f", runFile}, []string{
		"CONSOLE_PORT=" + strconv.Itoa(consolePort), "PROMETHEUS_URL=" + o.PrometheusURL,
		"JAEGER_URL=" + o.JaegerURL, "DAPR_API_TOKEN=" + sys.DaprToken,
	})
	waitHTTP(t, o.ConsoleURL+"/healthz")
	// Registered after the system's own cleanup, so it runs first, while
	// everything still answers.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if res, err := http.Get(o.ConsoleURL + "/api/snapshot"); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			t.Logf("---- console snapshot ----\n%s", body)
		}
		if res, err := http.Get(sys.App("orders").MetricsURL()); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(l, "dapr_component_pubsub") && !strings.Contains(l, "_bucket") {
					t.Logf("orders' sidecar: %s", l)
				}
			}
		}
	})
	return o
}

// writeRunFile writes the system's apps in dapr.yaml's form.
func (o *observed) writeRunFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\napps:\n")
	for _, name := range harness.Apps {
		a := o.App(name)
		fmt.Fprintf(&b, "  - appID: %s\n    appDirPath: ./%s\n    appPort: %d\n    daprHTTPPort: %d\n    daprGRPCPort: %d\n    metricsPort: %d\n",
			a.ID, name, a.AppPort, a.HTTPPort, a.GRPCPort, a.MetricsPort)
	}
	path := filepath.Join(o.Dir(), "run.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

// toolPath finds a program: $env, else def; a missing one fails the test
// with what to run to get it.
func toolPath(t *testing.T, env, def, howTo string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = def
	}
	found, err := exec.LookPath(p)
	if err != nil {
		t.Fatalf("%s not found (%v): run `%s` or set %s", p, err, howTo, env)
	}
	return found
}

// consoleBinary builds the console into the test's folder (Go's build cache
// makes every build after the first a link).
func consoleBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "console")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./apps/console")
	cmd.Dir = harness.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./apps/console: %s", out)
	return bin
}

// waitHTTP polls url until it answers 2xx.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	eventually(t, 30*time.Second, func() (bool, string) {
		res, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		res.Body.Close()
		return res.StatusCode/100 == 2, url + ": " + res.Status
	})
}

// jaegerTrace is a trace as Jaeger's API answers it.
type jaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		References    []struct {
			SpanID string `json:"spanID"`
		} `json:"references"`
		Tags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

// services maps each service of the trace to its spans' operation names.
func (tr jaegerTrace) services() map[string][]string {
	out := map[string][]string{}
	for _, s := range tr.Spans {
		svc := tr.Processes[s.ProcessID].ServiceName
		out[svc] = append(out[svc], s.OperationName)
	}
	return out
}

// getTrace reads one trace from Jaeger; found is false while it has none.
func (o *observed) getTrace(t *testing.T, id string) (tr jaegerTrace, found bool) {
	t.Helper()
	res := do(t, http.MethodGet, o.JaegerURL+"/api/traces/"+id, nil)
	if res.Status == http.StatusNotFound {
		return tr, false
	}
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	res.JSON(t, &body)
	if len(body.Data) == 0 {
		return tr, false
	}
	return body.Data[0], true
}

// requestCounts reads an app's /metrics: requests answered, by
// "METHOD route status".
func requestCounts(t *testing.T, a *harness.App) map[string]uint64 {
	t.Helper()
	res, err := http.Get(a.URL() + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "%s /metrics", a.Name)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	out := map[string]uint64{}
	for _, m := range families["http_server_request_duration_seconds"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		out[l["method"]+" "+l["route"]+" "+l["status"]] += m.GetHistogram().GetSampleCount()
	}
	return out
}

// counterValue reads one counter of an app's /metrics, summed over the
// series whose labels include want.
func counterValue(t *testing.T, a *harness.App, name string, want map[string]string) float64 {
	t.Helper()
	res, err := http.Get(a.URL() + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	var sum float64
next:
	for _, m := range families[name].GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == k && l.GetValue() == v)
			}
			if !found {
				continue next
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// served sums the counts of requests other than probes and scrapes.
func served(counts map[string]uint64) uint64 {
	var n uint64
	for k, v := range counts {
		route := strings.Fields(k)[1]
		if route != "/healthz" && route != "/readyz" && route != "/metrics" {
			n += v
		}
	}
	return n
}

// promTargets reads Prometheus' active targets: scrape URL -> health.
func (o *observed) promTargets(t *testing.T) map[string]string {
	t.Helper()
	res := do(t, http.MethodGet, o.PrometheusURL+"/api/v1/targets?state=active", nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	var body struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &body))
	out := map[string]string{}
	for _, tg := range body.Data.ActiveTargets {
		out[tg.ScrapeURL] = tg.Health + " " + tg.LastError
	}
	return out
}
