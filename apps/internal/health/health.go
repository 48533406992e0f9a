// Package health serves the two probes every app exposes: /healthz (the
// process is alive) and /readyz (its sidecar and the stores it needs answer).
package health

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// Check is one readiness condition, such as "sidecar" or "statestore".
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// Report is the /readyz body.
type Report struct {
	Status string            `json:"status"` // "ready" or "not_ready"
	Checks map[string]string `json:"checks"` // name -> "ok" or the failure
}

// Live answers /healthz: if this runs, the process is alive.
func Live(w http.ResponseWriter, _ *http.Request) {
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// Ready answers /readyz by running every check concurrently, each bounded by a
// short timeout, and reports 503 with the failures when one fails.
func Ready(checks ...Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		rep := Report{Status: "ready", Checks: make(map[string]string, len(checks))}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range checks {
			wg.Go(func() {
				result := "ok"
				if err := c.Probe(ctx); err != nil {
					result = err.Error()
				}
				mu.Lock()
				defer mu.Unlock()
				rep.Checks[c.Name] = result
				if result != "ok" {
					rep.Status = "not_ready"
				}
			})
		}
		wg.Wait()
		status := http.StatusOK
		if rep.Status != "ready" {
			status = http.StatusServiceUnavailable
		}
		api.WriteJSON(w, status, rep)
	}
}
