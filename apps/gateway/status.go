package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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
	// CircuitBreakers maps a caller to the state of its breaker for this app.
	CircuitBreakers map[string]string `json:"circuit_breakers"`
}

// StatusReport is the /api/status body.
type StatusReport struct {
	Status string               `json:"status"` // "ok" or "degraded"
	Apps   map[string]AppStatus `json:"apps"`
	// Unreachable lists sidecars whose metrics could not be read.
	Unreachable []string `json:"unreachable_metrics,omitempty"`
}

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
// closed, half-open or open. The gauge is 0 closed, 1 half-open, 2 open.
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
	states := map[string]string{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "dapr_resiliency_cb_state{") {
			continue
		}
		labels, value, ok := splitSample(line)
		if !ok || labels["flow_direction"] != "outbound" {
			continue
		}
		target, isApp := strings.CutPrefix(labels["target"], "app_")
		if !isApp {
			continue
		}
		switch value {
		case 0:
			states[target] = "closed"
		case 1:
			states[target] = "half-open"
		case 2:
			states[target] = "open"
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
