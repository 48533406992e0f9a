package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Console gathers what the page shows, from every source at once, each
// bounded by a short timeout: a source that does not answer is marked on the
// page, never waited for.
type Console struct {
	Apps       []App
	Sidecars   *Sidecars
	Prometheus *Prometheus
	Jaeger     *Jaeger
	Logs       *Logs
	Log        *slog.Logger
}

// AppView is one app and its sidecar on the page.
type AppView struct {
	App
	Version       string
	Components    []Component
	Subscriptions []Subscription
	SidecarError  string // "" when the sidecar is healthy
	AppError      string // "" when the app is ready
	MetadataError string
	Metrics       SidecarMetrics
	MetricsError  string
	Problems      []string // everything unhealthy about it
	LogFile       string
}

// Healthy says whether nothing is wrong with the app or its sidecar.
func (a AppView) Healthy() bool { return len(a.Problems) == 0 }

// Breaker is one caller's circuit breaker for one target.
type Breaker struct{ Caller, Target, State string }

// DeadLetter is a count of events that could not be handled.
type DeadLetter struct {
	App, Topic string
	Count      float64
	Kind       string // "received" on a dead-letter topic, or "dropped" by the app
}

// OrderView is one placed order's trace, summarised.
type OrderView struct {
	TraceID  string
	Start    time.Time
	Duration time.Duration
	Spans    int
	Services []string
	Failed   bool
}

// Snapshot is everything on the page at one moment.
type Snapshot struct {
	Taken       time.Time
	Apps        []AppView
	Edges       []Edge
	EdgesError  string
	Targets     []Target
	Breakers    []Breaker
	DeadLetters []DeadLetter
	Orders      []OrderView
	OrdersError string
	Problems    []string
}

// Snapshot reads every source.
func (c *Console) Snapshot(ctx context.Context) Snapshot {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	snap := Snapshot{Taken: time.Now(), Apps: make([]AppView, len(c.Apps))}
	var wg sync.WaitGroup
	for i, a := range c.Apps {
		wg.Go(func() { snap.Apps[i] = c.appView(ctx, a) })
	}
	wg.Go(func() {
		edges, err := c.Prometheus.Edges(ctx)
		if err != nil {
			snap.EdgesError = err.Error()
			return
		}
		snap.Edges = edges
		snap.Targets, _ = c.Prometheus.Targets(ctx)
	})
	wg.Go(func() {
		orders, err := c.orders(ctx)
		if err != nil {
			snap.OrdersError = err.Error()
		}
		snap.Orders = orders
	})
	wg.Wait()

	deadTopics := map[string]bool{}
	for _, a := range snap.Apps {
		for _, s := range a.Subscriptions {
			if s.DeadLetterTopic != "" {
				deadTopics[s.DeadLetterTopic] = true
			}
		}
	}
	for _, a := range snap.Apps {
		for target, state := range a.Metrics.Breakers {
			snap.Breakers = append(snap.Breakers, Breaker{Caller: a.ID, Target: target, State: state})
			if state != "closed" {
				snap.Problems = append(snap.Problems, fmt.Sprintf("breaker %s → %s is %s", a.ID, target, state))
			}
		}
		for topic, n := range a.Metrics.Received {
			if deadTopics[topic] && n > 0 {
				snap.DeadLetters = append(snap.DeadLetters, DeadLetter{App: a.ID, Topic: topic, Count: n, Kind: "received"})
				snap.Problems = append(snap.Problems, fmt.Sprintf("%s holds %.0f dead letter(s) from topic %s", a.ID, n, topic))
			}
		}
		for topic, n := range a.Metrics.Dropped {
			if n > 0 {
				snap.DeadLetters = append(snap.DeadLetters, DeadLetter{App: a.ID, Topic: topic, Count: n, Kind: "dropped"})
			}
		}
		for _, p := range a.Problems {
			snap.Problems = append(snap.Problems, a.ID+": "+p)
		}
	}
	for _, t := range snap.Targets {
		if t.Health != "up" {
			snap.Problems = append(snap.Problems, fmt.Sprintf("Prometheus cannot scrape %s (%s): %s", t.URL, t.Health, t.Error))
		}
	}
	sort.Slice(snap.Breakers, func(i, j int) bool {
		return snap.Breakers[i].Caller+snap.Breakers[i].Target < snap.Breakers[j].Caller+snap.Breakers[j].Target
	})
	sort.Slice(snap.DeadLetters, func(i, j int) bool {
		return snap.DeadLetters[i].App+snap.DeadLetters[i].Topic < snap.DeadLetters[j].App+snap.DeadLetters[j].Topic
	})
	sort.Strings(snap.Problems)
	return snap
}

func (c *Console) appView(ctx context.Context, a App) AppView {
	v := AppView{App: a}
	var wg sync.WaitGroup
	wg.Go(func() {
		md, err := c.Sidecars.Metadata(ctx, a)
		if err != nil {
			v.MetadataError = err.Error()
			return
		}
		v.Version, v.Components, v.Subscriptions = md.RuntimeVersion, md.Components, md.Subscriptions
		sort.Slice(v.Components, func(i, j int) bool { return v.Components[i].Name < v.Components[j].Name })
		v.LogFile = c.Logs.File(a, md)
	})
	wg.Go(func() {
		if err := c.Sidecars.Healthy(ctx, a); err != nil {
			v.SidecarError = err.Error()
		}
	})
	wg.Go(func() {
		if err := c.Sidecars.AppReady(ctx, a); err != nil {
			v.AppError = err.Error()
		}
	})
	wg.Go(func() {
		m, err := c.Sidecars.Metrics(ctx, a)
		if err != nil {
			v.MetricsError = err.Error()
		}
		v.Metrics = m
	})
	wg.Wait()
	if v.LogFile == "" {
		v.LogFile = c.Logs.File(a, Metadata{})
	}
	if v.SidecarError != "" {
		v.Problems = append(v.Problems, "sidecar not healthy: "+v.SidecarError)
	}
	if v.AppError != "" {
		v.Problems = append(v.Problems, "app not ready: "+v.AppError)
	}
	if v.MetadataError != "" && v.SidecarError == "" {
		v.Problems = append(v.Problems, "sidecar metadata: "+v.MetadataError)
	}
	for _, f := range v.Metrics.FailedComponents {
		v.Problems = append(v.Problems, "component failed to load: "+f)
	}
	return v
}

// gatewayID is the app id of the gateway: the one whose id starts so.
func (c *Console) gatewayID() string {
	for _, a := range c.Apps {
		if a.ID == "gateway" || strings.HasPrefix(a.ID, "gateway-") {
			return a.ID
		}
	}
	return "gateway"
}

func (c *Console) orders(ctx context.Context) ([]OrderView, error) {
	traces, err := c.Jaeger.Orders(ctx, c.gatewayID(), 10)
	if err != nil {
		return nil, err
	}
	out := make([]OrderView, 0, len(traces))
	for _, t := range traces {
		out = append(out, summarise(t))
	}
	return out, nil
}

func summarise(t JaegerTrace) OrderView {
	v := OrderView{TraceID: t.TraceID, Start: t.Start(), Spans: len(t.Spans)}
	seen := map[string]bool{}
	var end int64
	for _, s := range t.Spans {
		if e := s.StartTime + s.Duration; e > end {
			end = e
		}
		if svc := t.Service(s); !seen[svc] {
			seen[svc] = true
			v.Services = append(v.Services, svc)
		}
		if s.Failed() {
			v.Failed = true
		}
	}
	sort.Strings(v.Services)
	v.Duration = time.UnixMicro(end).Sub(v.Start)
	return v
}

// TraceView is one trace with the log lines of every app for it.
type TraceView struct {
	Trace JaegerTrace
	Found bool
	Error string
	Rows  []SpanRow
	Total time.Duration
	Logs  []LogLine
}

// SpanRow is one span in the timeline, in tree order.
type SpanRow struct {
	Span    JaegerSpan
	Service string
	Depth   int
	Offset  time.Duration
}

// Trace reads one trace and its log lines.
func (c *Console) Trace(ctx context.Context, id string) TraceView {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	var v TraceView
	var wg sync.WaitGroup
	wg.Go(func() {
		t, ok, err := c.Jaeger.Trace(ctx, id)
		if err != nil {
			v.Error = err.Error()
		}
		v.Trace, v.Found = t, ok
	})
	wg.Go(func() {
		var mu sync.Mutex
		var inner sync.WaitGroup
		for _, a := range c.Apps {
			inner.Go(func() {
				md, _ := c.Sidecars.Metadata(ctx, a)
				file := c.Logs.File(a, md)
				if file == "" {
					return
				}
				lines := c.Logs.ForTrace(a.ID, file, id)
				mu.Lock()
				defer mu.Unlock()
				v.Logs = append(v.Logs, lines...)
			})
		}
		inner.Wait()
		SortLines(v.Logs)
	})
	wg.Wait()
	if v.Found {
		v.Rows, v.Total = timeline(v.Trace)
	}
	return v
}

// timeline orders a trace's spans as a tree (a span whose parent is not in
// the trace, such as the gateway's own, unexported span, is a root), each
// with its depth and its start relative to the trace's.
func timeline(t JaegerTrace) ([]SpanRow, time.Duration) {
	byID := map[string]bool{}
	children := map[string][]JaegerSpan{}
	var roots []JaegerSpan
	for _, s := range t.Spans {
		byID[s.SpanID] = true
	}
	for _, s := range t.Spans {
		if p := s.Parent(); p != "" && byID[p] && p != s.SpanID {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(spans []JaegerSpan) {
		sort.SliceStable(spans, func(i, j int) bool { return spans[i].StartTime < spans[j].StartTime })
	}
	byStart(roots)
	start := t.Start().UnixMicro()
	var end int64
	var rows []SpanRow
	seen := map[string]bool{}
	var walk func(s JaegerSpan, depth int)
	walk = func(s JaegerSpan, depth int) {
		if seen[s.SpanID] {
			return
		}
		seen[s.SpanID] = true
		rows = append(rows, SpanRow{Span: s, Service: t.Service(s), Depth: depth, Offset: time.Duration(s.StartTime-start) * time.Microsecond})
		if e := s.StartTime + s.Duration; e > end {
			end = e
		}
		kids := children[s.SpanID]
		byStart(kids)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return rows, time.Duration(end-start) * time.Microsecond
}
