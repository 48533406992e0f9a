//go:build bench

package bench

import (
	"fmt"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/dapr/benchstat"
)

// OverheadConfig compares a direct call with the same call through two
// sidecars at one rate, over `runs` interleaved pairs of runs.
type OverheadConfig struct {
	Rate   int              `json:"rate"`
	Direct []Step           `json:"direct"`
	Via    []Step           `json:"via_sidecars"`
	AddP50 benchstat.Spread `json:"added_p50_ms"`
	AddP90 benchstat.Spread `json:"added_p90_ms"`
	AddP99 benchstat.Spread `json:"added_p99_ms"`
	// HopCPU is the CPU (apps and sidecars) a call through the two sidecars
	// costs beyond the direct call, in ms per request.
	HopCPU benchstat.Spread `json:"added_cpu_ms_per_request"`
}

// sidecarOverhead reads one user directly from users and through the
// gateway's sidecar and users' sidecar, at the same rates, interleaved.
func sidecarOverhead(b *bench, sys *harness.System, m *meter) []OverheadConfig {
	t := b.t
	u := newGateway(t, sys).create(t, "/api/users", map[string]any{"name": "Bench", "email": fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())})
	users := sys.App("users")
	// The app's own port wants the token its sidecar sends.
	direct := vegeta.Target{Method: http.MethodGet, URL: users.URL() + "/users/" + u, Header: http.Header{"Dapr-Api-Token": {sys.AppToken}}}
	via := vegeta.Target{Method: http.MethodGet, URL: sys.App("gateway").SidecarURL() + "/v1.0/invoke/" + users.ID + "/method/users/" + u,
		Header: http.Header{"Dapr-Api-Token": {sys.DaprToken}}}
	// Warm both paths: connections, caches.
	attackAll(t, m, "warm-direct", []vegeta.Target{direct}, 200, 2*time.Second)
	attackAll(t, m, "warm-sidecar", []vegeta.Target{via}, 200, 2*time.Second)

	var out []OverheadConfig
	for _, rate := range overheadRates {
		if b.spent(fmt.Sprintf("sidecar overhead at %d/s", rate)) {
			break
		}
		c := OverheadConfig{Rate: rate}
		var p50, p90, p99, hop []float64
		// Each run a direct half and a via half, back to back, so drift on
		// the machine hits both alike.
		for i := range runs {
			d := attackAll(t, m, "direct", []vegeta.Target{direct}, rate, stepDuration/2)
			v := attackAll(t, m, "via sidecars", []vegeta.Target{via}, rate, stepDuration/2)
			c.Direct, c.Via = append(c.Direct, d), append(c.Via, v)
			p50, p90, p99 = append(p50, msf(v.P50-d.P50)), append(p90, msf(v.P90-d.P90)), append(p99, msf(v.P99-d.P99))
			hop = append(hop, v.CPU.System-d.CPU.System)
			t.Logf("overhead at %d/s, run %d: %+.2f ms p50, %+.2f ms p90, %+.2f ms p99; %+.3f ms CPU per call (errors %d/%d)",
				rate, i+1, msf(v.P50-d.P50), msf(v.P90-d.P90), msf(v.P99-d.P99), v.CPU.System-d.CPU.System, d.Errors, v.Errors)
		}
		c.AddP50, c.AddP90, c.AddP99, c.HopCPU = benchstat.SpreadOf(p50), benchstat.SpreadOf(p90), benchstat.SpreadOf(p99), benchstat.SpreadOf(hop)
		out = append(out, c)
	}
	return out
}
