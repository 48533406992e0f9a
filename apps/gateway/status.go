package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// Status answers GET /api/status: for every app, whether it is ready (its
// /readyz, called through service invocation) and the state of the circuit
// breakers its callers' sidecars hold for it, read from those sidecars'
// Prometheus metrics (dapr_resiliency_cb_state). An operator sees
// "users: open" without reading logs.
type Status struct {
	Invoker *sidecar.Invoker
	Client  *http.Client
	// Apps maps each app's name to its Dapr app id.
	Apps map[string]string
	// Metrics maps an app's name to its sidecar's metrics URL.
	Metrics map[string]string
	Log     *slog.Logger
}

// AppStatus is one app in the status report.
type AppStatus struct {
	Ready bool `json:"ready"`
	// Readiness is the app's own /readyz report, or why it could not be had.
	Readiness any `json:"readiness"`
	// Breaker is the worst state among CircuitBreakers: open, half-open or
	// closed ("closed" too when no caller has called it yet).
	Breaker string `json:"breaker"`
	// CircuitBreakers maps a caller to the state of its breaker for this app,
	// as its sidecar reports it: the breaker (one per method path) of the
	// caller's latest call to this app.
	CircuitBreakers map[string]string `json:"circuit_breakers"`
}

// StatusReport is the /api/status body.
type StatusReport struct {
	Status string               `json:"status"` // "ok" or "degraded"
	Apps   map[string]AppStatus `json:"apps"`
	// Unreachable lists sidecars whose metrics could not be read.
	Unreachable []string `json:"unreachable_metrics,omitempty"`
}

// ServeHTTP gathers readiness and breaker states concurrently, each source
// bounded by a short timeout, and always answers 200 with the report.
func (s *Status) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()

	rep := StatusReport{Status: "ok", Apps: map[string]AppStatus{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, id := range s.Apps {
		wg.Go(func() {
			st := s.readiness(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			rep.Apps[name] = st
		})
	}
	breakers := map[string]map[string]string{} // target app id -> caller -> state
	for caller, url := range s.Metrics {
		wg.Go(func() {
			states, err := s.breakerStates(ctx, url)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Unreachable = append(rep.Unreachable, caller)
				return
			}
			for target, state := range states {
				if breakers[target] == nil {
					breakers[target] = map[string]string{}
				}
				breakers[target][caller] = state
			}
		})
	}
	wg.Wait()
	sort.Strings(rep.Unreachable)

	for name, id := range s.Apps {
		st := rep.Apps[name]
		st.CircuitBreakers = breakers[id]
		if st.CircuitBreakers == nil {
			st.CircuitBreakers = map[string]string{}
		}
		st.Breaker = "closed"
		for _, state := range st.CircuitBreakers {
			if rank[state] > rank[st.Breaker] {
				st.Breaker = state
			}
		}
		if !st.Ready || st.Breaker != "closed" {
			rep.Status = "degraded"
		}
		rep.Apps[name] = st
	}
	api.WriteJSON(w, http.StatusOK, rep)
}

var rank = map[string]int{"closed": 0, "half-open": 1, "open": 2}

func (s *Status) readiness(ctx context.Context, appID string) AppStatus {
	res, err := s.Invoker.Invoke(ctx, appID, http.MethodGet, "readyz", nil)
	if err != nil {
		return AppStatus{Readiness: err.Error()}
	}
	var body any
	if json.Unmarshal(res.Body, &body) != nil {
		body = string(res.Body)
	}
	return AppStatus{Ready: res.Status == http.StatusOK, Readiness: body}
}

// breakerStates reads a sidecar's circuit breaker gauges: target app id ->
// closed, half-open or open.
//
// daprd 1.18 exports one series per target and state, the state in the
// `status` label, with the value 1 for the current state and 0 for the others:
//
//	dapr_resiliency_cb_state{app_id="orders",flow_direction="outbound",name="ordermesh",namespace="",policy="circuitbreaker",status="open",target="app_users"} 1
//
// The target names the app, not the method path, although Dapr keeps one
// breaker per method path: the series are written as a call starts, with the
// state of that call's breaker, so they show the breaker of the latest call to
// the app. Where several series say 1 for one app (several Resiliency
// resources), the worst state wins.
func (s *Status) breakerStates(ctx context.Context, url string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := s.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics answered %d", res.StatusCode)
	}
	return parseBreakerStates(res.Body)
}

// parseBreakerStates reads the dapr_resiliency_cb_state series of a
// Prometheus text exposition; see breakerStates.
func parseBreakerStates(r io.Reader) (map[string]string, error) {
	states := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "dapr_resiliency_cb_state{") {
			continue
		}
		labels, value, ok := splitSample(line)
		if !ok || value != 1 || labels["flow_direction"] != "outbound" || labels["policy"] != "circuitbreaker" {
			continue
		}
		target, isApp := strings.CutPrefix(labels["target"], "app_")
		state := labels["status"]
		if _, known := rank[state]; !isApp || !known {
			continue
		}
		if prev, seen := states[target]; !seen || rank[state] > rank[prev] {
			states[target] = state
		}
	}
	return states, sc.Err()
}

// splitSample parses `name{k="v",...} value`.
func splitSample(line string) (map[string]string, float64, bool) {
	open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || end < open {
		return nil, 0, false
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(line[open+1:end], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			labels[k] = strings.Trim(v, `"`)
		}
	}
	value, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
	return labels, value, err == nil
}
