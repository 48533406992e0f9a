//go:build bench

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Dapr's published figures (Dapr v1.17 performance report, HTTP service
// invocation through two sidecars at 1000 requests/s), shown beside ours.
const daprPublished = "+1.06 ms p50, +1.48 ms p90, +2.90 ms p99 at 1000 req/s; a sidecar at about 200 mCPU and 51 MB"

// write stores the report as JSON and Markdown, under a timestamped name and
// as latest.{json,md}.
func write(t *testing.T, dir string, rep Report) {
	t.Helper()
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	md := markdown(rep)
	stamp := rep.When.Format("20060102-150405")
	for name, data := range map[string][]byte{
		"report-" + stamp + ".json": js, "report-" + stamp + ".md": []byte(md),
		"latest.json": js, "latest.md": []byte(md),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("report written to %s\n\n%s", filepath.Join(dir, "latest.md"), md)
}

func markdown(rep Report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# ordermesh benchmark, %s", rep.When.Format(time.RFC3339))
	p("")
	p("Machine: %s, %d cores, %s, Linux %s, %s. daprd %s, load from vegeta %s in the same machine.",
		rep.Machine.CPU, rep.Machine.Cores, rep.Machine.Memory, rep.Machine.Kernel, rep.Machine.Go, rep.Versions["daprd"], rep.Versions["vegeta"])
	p("Every process of the system and the load generator share these cores.")
	p("")
	p("## Sidecar overhead: GET a user directly vs through two sidecars")
	p("")
	p("| rate/s | direct p50 | p90 | p99 | via sidecars p50 | p90 | p99 | added p50 | added p90 | added p99 | errors |")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rep.Overhead {
		p("| %d | %s | %s | %s | %s | %s | %s | **%s** | **%s** | **%s** | %d |", r.Rate,
			ms(r.Direct.P50), ms(r.Direct.P90), ms(r.Direct.P99), ms(r.Sidecar.P50), ms(r.Sidecar.P90), ms(r.Sidecar.P99),
			ms(r.AddP50), ms(r.AddP90), ms(r.AddP99), r.Direct.Errors+r.Sidecar.Errors)
	}
	p("")
	p("Dapr's published figures: %s.", daprPublished)
	if len(rep.Overhead) > 0 {
		last := rep.Overhead[len(rep.Overhead)-1]
		p("")
		p("Processes during the via-sidecars run at %d/s:", last.Rate)
		p("")
		usageTable(p, last.Sidecar.Processes)
	}
	p("")
	p("## Order placement: POST /api/orders through the gateway")
	p("")
	p("Each order: gateway → orders; orders → users (check), → products (reserve stock), → PostgreSQL (order and outbox event in one transaction).")
	p("")
	p("| rate/s | throughput/s | p50 | p90 | p99 | max | errors |")
	p("| --- | --- | --- | --- | --- | --- | --- |")
	for _, s := range rep.Orders {
		p("| %d | %.0f | %s | %s | %s | %s | %d |", s.Rate, s.Throughput, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), s.Errors)
	}
	p("")
	p("Highest rate held with p99 ≤ 100 ms and no errors: **%d orders/s**.", rep.HighestOrderRate)
	if n := len(rep.Orders); n > 0 {
		p("")
		p("Processes during the %d/s step:", rep.Orders[n-1].Rate)
		p("")
		usageTable(p, rep.Orders[n-1].Processes)
	}
	p("")
	p("## Event latency: order stored → notification stored")
	p("")
	p("| broker | orders | rate/s | p50 | p99 | max |")
	p("| --- | --- | --- | --- | --- | --- |")
	for _, e := range rep.Events {
		p("| %s | %d | %d | %s | %s | %s |", e.Broker, e.Orders, e.Rate, ms(e.P50), ms(e.P99), ms(e.Max))
	}
	p("")
	p("## Idle footprint")
	p("")
	usageTable(p, rep.Idle)
	return b.String()
}

func usageTable(p func(string, ...any), us []Usage) {
	p("| process | CPU (mCPU) | RSS MB | peak RSS MB |")
	p("| --- | --- | --- | --- |")
	for _, u := range us {
		p("| %s | %.0f | %.1f | %.1f |", u.Process, u.MilliCPU, u.RSSMB, u.PeakMB)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}
