package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Prometheus reads the topology of the mesh from the sidecars' metrics that
// Prometheus scraped: who called whom, who published and who consumed which
// topic, with their rates, errors and p99.
type Prometheus struct{ api promv1.API }

// NewPrometheus returns a client of the Prometheus at base.
func NewPrometheus(base string) (*Prometheus, error) {
	c, err := promapi.NewClient(promapi.Config{Address: base})
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	return &Prometheus{api: promv1.NewAPI(c)}, nil
}

// Edge is one arrow of the topology map.
type Edge struct {
	From, To string // app ids; for events, a topic is "topic:<name>"
	Kind     string // "invoke", "publish" or "consume"
	Total    float64
	Errors   float64
	Rate     float64 // per second, over the last minute
	P99ms    float64 // NaN when unknown
}

// ErrorRatio is the share of failed calls (since the sidecars started).
func (e Edge) ErrorRatio() float64 {
	if e.Total == 0 {
		return 0
	}
	return e.Errors / e.Total
}

// The queries behind each kind of edge, by daprd 1.18's metric names. The
// calling sidecar records each answer under app_id (itself) and src_app_id
// (the app that answered). Counts and p99 are since the sidecars started (a
// counter's first scrape already holds the first call, which a rate over a
// window would not show); the rate is over the last minute.
var edgeQueries = []struct {
	kind, total, errors, rate, p99 string
}{
	{
		kind:   "invoke",
		total:  `sum by (app_id, src_app_id) (dapr_runtime_service_invocation_res_recv_total)`,
		errors: `sum by (app_id, src_app_id) (dapr_runtime_service_invocation_res_recv_total{status!~"[1-4][0-9][0-9]|0"})`,
		rate:   `sum by (app_id, src_app_id) (rate(dapr_runtime_service_invocation_res_recv_total[1m]))`,
		p99:    `histogram_quantile(0.99, sum by (le, app_id, src_app_id) (dapr_runtime_service_invocation_res_recv_latency_ms_bucket))`,
	},
	{
		kind:   "publish",
		total:  `sum by (app_id, topic) (dapr_component_pubsub_egress_count)`,
		errors: `sum by (app_id, topic) (dapr_component_pubsub_egress_count{success="false"})`,
		rate:   `sum by (app_id, topic) (rate(dapr_component_pubsub_egress_count[1m]))`,
		p99:    `histogram_quantile(0.99, sum by (le, app_id, topic) (dapr_component_pubsub_egress_latencies_bucket))`,
	},
	{
		kind:   "consume",
		total:  `sum by (app_id, topic) (dapr_component_pubsub_ingress_count)`,
		errors: `sum by (app_id, topic) (dapr_component_pubsub_ingress_count{process_status!="success"})`,
		rate:   `sum by (app_id, topic) (rate(dapr_component_pubsub_ingress_count[1m]))`,
		p99:    `histogram_quantile(0.99, sum by (le, app_id, topic) (dapr_component_pubsub_ingress_latencies_bucket))`,
	},
}

// Edges queries every edge of the topology. An event that Dapr's outbox
// publishes (orders' order_created) shows as its topic's consume edges only:
// daprd 1.18.2 counts no publish for it.
func (p *Prometheus) Edges(ctx context.Context) ([]Edge, error) {
	edges := map[string]*Edge{}
	var order []string
	for _, q := range edgeQueries {
		for i, query := range []string{q.total, q.errors, q.rate, q.p99} {
			vec, err := p.vector(ctx, query)
			if err != nil {
				return nil, err
			}
			for _, s := range vec {
				from, to := string(s.Metric["app_id"]), string(s.Metric["src_app_id"])
				if q.kind != "invoke" {
					topic := "topic:" + string(s.Metric["topic"])
					to = topic
					if q.kind == "consume" {
						from, to = topic, string(s.Metric["app_id"])
					}
				}
				if from == "" || to == "" || strings.HasSuffix(to, "topic:") {
					continue
				}
				key := q.kind + "|" + from + "|" + to
				e, ok := edges[key]
				if !ok {
					if i != 0 {
						continue // an edge exists when its total does
					}
					e = &Edge{From: from, To: to, Kind: q.kind, P99ms: math.NaN()}
					edges[key] = e
					order = append(order, key)
				}
				v := float64(s.Value)
				switch i {
				case 0:
					e.Total = v
				case 1:
					e.Errors = v
				case 2:
					e.Rate = v
				case 3:
					e.P99ms = v
				}
			}
		}
	}
	sort.Strings(order)
	out := make([]Edge, 0, len(order))
	for _, k := range order {
		out = append(out, *edges[k])
	}
	return out, nil
}

// Target is one scrape target and whether its last scrape worked.
type Target struct {
	Job, App, URL, Health, Error string
}

// Targets lists Prometheus' scrape targets.
func (p *Prometheus) Targets(ctx context.Context) ([]Target, error) {
	res, err := p.api.Targets(ctx)
	if err != nil {
		return nil, fmt.Errorf("prometheus targets: %w", err)
	}
	var out []Target
	for _, t := range res.Active {
		out = append(out, Target{
			Job: string(t.Labels["job"]), App: string(t.Labels["app"]), URL: t.ScrapeURL,
			Health: string(t.Health), Error: t.LastError,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Job+out[i].App < out[j].Job+out[j].App })
	return out, nil
}

func (p *Prometheus) vector(ctx context.Context, query string) (model.Vector, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	v, _, _, err := p.api.Query(ctx, query, time.Now())
	if err != nil {
		return nil, fmt.Errorf("prometheus query %q: %w", query, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("prometheus query %q: got %s, want a vector", query, v.Type())
	}
	return vec, nil
}
