package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sidecars reads what each sidecar says about itself: its metadata (the
// version, components and subscriptions `dapr dashboard` showed), its health,
// and its own Prometheus metrics (circuit breakers, components that failed,
// events dropped), read live rather than through Prometheus so a breaker
// shows the moment it opens.
type Sidecars struct {
	Client *http.Client
	Token  string // DAPR_API_TOKEN, sent to the metadata API; never shown
}

// Metadata is the part of GET /v1.0/metadata the console shows.
type Metadata struct {
	ID             string            `json:"id"`
	RuntimeVersion string            `json:"runtimeVersion"`
	Components     []Component       `json:"components"`
	Subscriptions  []Subscription    `json:"subscriptions"`
	Extended       map[string]string `json:"extended"`
	AppConnection  AppConnection     `json:"appConnectionProperties"`
}

// Component is one loaded component.
type Component struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Version string `json:"version"`
}

// Subscription is one topic subscription of the app.
type Subscription struct {
	PubsubName      string `json:"pubsubname"`
	Topic           string `json:"topic"`
	DeadLetterTopic string `json:"deadLetterTopic"`
	Rules           []struct {
		Path string `json:"path"`
	} `json:"rules"`
}

// AppConnection is how the sidecar reaches its app.
type AppConnection struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	Health   struct {
		Path     string `json:"healthCheckPath"`
		Interval string `json:"healthProbeInterval"`
	} `json:"health"`
}

// Metadata reads the sidecar's metadata.
func (s *Sidecars) Metadata(ctx context.Context, a App) (Metadata, error) {
	var md Metadata
	body, status, err := s.get(ctx, fmt.Sprintf("http://127.0.0.1:%d/v1.0/metadata", a.HTTPPort), true)
	if err != nil {
		return md, err
	}
	if status != http.StatusOK {
		return md, fmt.Errorf("metadata answered %d", status)
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return md, fmt.Errorf("metadata: %w", err)
	}
	return md, nil
}

// Healthy asks the sidecar's /v1.0/healthz (which also waits for the app).
func (s *Sidecars) Healthy(ctx context.Context, a App) error {
	_, status, err := s.get(ctx, fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz", a.HTTPPort), false)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("sidecar healthz answered %d", status)
	}
	return nil
}

// AppReady asks the app's own /readyz (open without a token, like a probe).
func (s *Sidecars) AppReady(ctx context.Context, a App) error {
	if a.AppPort == 0 {
		return nil
	}
	body, status, err := s.get(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", a.AppPort), false)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("readyz answered %d: %s", status, strings.TrimSpace(string(body)))
	}
	return nil
}

// SidecarMetrics is what the console reads from one sidecar's metrics.
type SidecarMetrics struct {
	// Breakers maps a target app id to the state of this sidecar's breaker
	// for it: closed, half-open or open.
	Breakers map[string]string
	// FailedComponents are the components whose initialisation failed.
	FailedComponents []string
	// Dropped counts events this sidecar's app answered DROP, by topic.
	Dropped map[string]float64
	// Received counts events delivered to the app, by topic.
	Received map[string]float64
}

var breakerRank = map[string]int{"closed": 0, "half-open": 1, "open": 2}

// Metrics reads and parses the sidecar's Prometheus endpoint.
func (s *Sidecars) Metrics(ctx context.Context, a App) (SidecarMetrics, error) {
	body, status, err := s.get(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", a.MetricsPort), false)
	if err != nil {
		return SidecarMetrics{}, err
	}
	if status != http.StatusOK {
		return SidecarMetrics{}, fmt.Errorf("metrics answered %d", status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return SidecarMetrics{}, fmt.Errorf("parse metrics: %w", err)
	}
	return readSidecarMetrics(families), nil
}

// readSidecarMetrics picks out of daprd 1.18's metrics:
//
//	dapr_resiliency_cb_state{flow_direction="outbound",policy="circuitbreaker",status="open",target="app_users",...} 1
//	dapr_runtime_component_init_fail_total{component="orderstore",...} 1
//	dapr_component_pubsub_ingress_count{process_status="drop",topic="orders",...} 2
//
// A breaker series has the value 1 for its current state; where several
// series say 1 for one target, the worst state wins.
func readSidecarMetrics(families map[string]*dto.MetricFamily) SidecarMetrics {
	out := SidecarMetrics{Breakers: map[string]string{}, Dropped: map[string]float64{}, Received: map[string]float64{}}
	for _, m := range families["dapr_resiliency_cb_state"].GetMetric() {
		l := labels(m)
		if value(m) != 1 || l["flow_direction"] != "outbound" || l["policy"] != "circuitbreaker" {
			continue
		}
		target, isApp := strings.CutPrefix(l["target"], "app_")
		state := l["status"]
		if _, known := breakerRank[state]; !isApp || !known {
			continue
		}
		if prev, seen := out.Breakers[target]; !seen || breakerRank[state] > breakerRank[prev] {
			out.Breakers[target] = state
		}
	}
	for _, m := range families["dapr_runtime_component_init_fail_total"].GetMetric() {
		if value(m) > 0 {
			l := labels(m)
			name := l["component_name"]
			if name == "" {
				name = l["component"]
			}
			out.FailedComponents = append(out.FailedComponents, name+" ("+l["reason"]+")")
		}
	}
	sort.Strings(out.FailedComponents)
	for _, m := range families["dapr_component_pubsub_ingress_count"].GetMetric() {
		l := labels(m)
		out.Received[l["topic"]] += value(m)
		if l["process_status"] == "drop" {
			out.Dropped[l["topic"]] += value(m)
		}
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func (s *Sidecars) get(ctx context.Context, url string, withToken bool) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	if withToken && s.Token != "" {
		req.Header.Set("dapr-api-token", s.Token)
	}
	res, err := s.Client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("unreachable: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	return body, res.StatusCode, err
}

// itoa is strconv.Itoa for templates.
func itoa(n int) string { return strconv.Itoa(n) }
