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

	"github.com/ordermesh/ordermesh/dapr/benchstat"
)

// Dapr's published figures (Dapr v1.17 performance report, HTTP service
// invocation through two sidecars at 1000 requests/s), shown beside ours.
const daprPublished = "+1.06 ms p50, +1.48 ms p90, +2.90 ms p99 at 1000 req/s; a sidecar at about 200 mCPU and 51 MB"

// write stores the report as JSON and Markdown, under a timestamped name and
// as latest.{json,md}, and prints the Markdown.
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
	p("Machine: %s, %d cores, %s, Linux %s, %s. daprd %s, load from vegeta %s on the same machine.",
		rep.Machine.CPU, rep.Machine.Cores, rep.Machine.Memory, rep.Machine.Kernel, rep.Machine.Go, rep.Versions["daprd"], rep.Versions["vegeta"])
	p("Every process of the system, the servers and the load generator share these cores.")
	p("Each configuration ran %d times for %v; figures are `median (min–max)` over the runs, and a figure", rep.Runs, rep.Step)
	p("is marked ✓ when its runs agree within %.0f%% ((max−min)/median), stable enough to compare; ✗ when not. The run took %v.", benchstat.StableSpread*100, rep.Took)
	for _, s := range rep.Skipped {
		p("")
		p("**Skipped (time budget spent):** %s.", s)
	}

	p("")
	p("## CPU per order")
	p("")
	p("CPU-milliseconds per order sent (`POST /api/orders` through the gateway; a run with errors counts them too, and its figure")
	p("is then less comparable), from `/proc/<pid>/stat` before and after each run:")
	p("apps + sidecars (and Sentry); servers (Redis and RabbitMQ whole, PostgreSQL's shared processes and only the backends")
	p("serving this system); the load generator (this test process) apart.")
	p("")
	p("| rate/s | apps + sidecars | apps | sidecars | servers | all | load generator | p50 | p99 | errors (median run) | held | load average (1 min) | caveats |")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, c := range rep.Orders {
		m := c.Runs[c.Median]
		p("| %d | **%s** | %s | %s | %s | %s | %s | %s ms | %s ms | %d | %s | %s | %s |", c.Rate, c.Sys, c.Apps, c.Side, c.Serv, c.All, c.Load,
			c.P50, c.P99, m.Errors, yes(c.Held()), c.LoadAvg.Loads(), c.caveat())
	}
	p("")
	p("Highest rate held with p99 ≤ %v and no errors in the median run: **%d orders/s**.", p99Limit, rep.HighestOrderRate)
	if len(rep.Orders) > 0 {
		c := rep.Orders[0]
		p("")
		p("Per process at %d orders/s:", c.Rate)
		p("")
		procTable(p, c.Procs)
	}

	if pr := rep.Profile; pr != nil {
		p("")
		p("## Where an order's CPU goes")
		p("")
		p("CPU profiles of every app and sidecar taken together for %.0f s while orders were placed at %d/s (%d orders, %d errors):",
			pr.Seconds, pr.Rate, pr.Orders, pr.Errors)
		p("%.2f ms of CPU per order profiled; `/proc` measured %.2f ms for apps and sidecars in the same window. Profiles: `%s`",
			pr.Summary.TotalMs, pr.Measured.System, pr.Dir)
		p("(`go tool pprof -top <file>`).")
		for _, miss := range pr.Missing {
			p("Missing profile: %s.", miss)
		}
		p("")
		p("By purpose (a sample goes to the first purpose any frame of its stack matches, in this order):")
		p("")
		costTable(p, pr.Summary.ByPurpose)
		p("")
		p("By kind of work (the innermost frame that matches decides):")
		p("")
		costTable(p, pr.Summary.ByKind)
		p("")
		measured := map[string]float64{}
		for _, u := range pr.Processes {
			measured[u.Process] = u.MsOrder
		}
		p("| process | CPU ms/order profiled | measured in /proc | top functions (flat, ms/order) |")
		p("| --- | --- | --- | --- |")
		for _, c := range pr.Summary.ByProcess {
			p("| %s | %.3f | %.3f | %s |", c.Name, c.MsOrder, measured[c.Name], topFuncs(c.Top, 3))
		}
	}

	if len(rep.Variants) > 0 {
		p("")
		p("## Sidecar settings and earlier apps (BENCH_BEFORE), same run")
		p("")
		p("Each setting (or the apps of an earlier commit) on a system of its own, started next to the baseline; the same order step (%d/s) ran on each in turn, round after round.", rep.Variants[0].Rate)
		ref := rep.Variants[0]
		for _, c := range rep.Variants {
			if c.Name == "fresh" {
				ref = c // started like the others: the fair reference
			}
		}
		p("Change is the median's against the median of %q, for apps + sidecars; a change smaller than the spread of either is no change.", ref.Name)
		p("")
		p("| setting | apps + sidecars ms/order | change | sidecars | servers | p99 | load average (1 min) | what | caveats |")
		p("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		base := ref.Sys.Median
		for _, c := range rep.Variants {
			change := "—"
			if c.Name != ref.Name && base > 0 {
				change = fmt.Sprintf("%+.1f%%", 100*(c.Sys.Median-base)/base)
			}
			p("| %s | **%s** | %s | %s | %s | %s ms | %s | %s | %s |", c.Name, c.Sys, change, c.Side, c.Serv, c.P99, c.LoadAvg.Loads(), c.Note, c.caveat())
		}
	}

	p("")
	p("## Sidecar overhead: GET a user directly vs through two sidecars")
	p("")
	p("| rate/s | added p50 | added p90 | added p99 | added CPU per call | direct p50 / p99 (median run) | errors |")
	p("| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rep.Overhead {
		errs := 0
		for i := range r.Direct {
			errs += r.Direct[i].Errors + r.Via[i].Errors
		}
		d := r.Direct[benchstat.MedianIndex(p99s(r.Direct))]
		p("| %d | **%s ms** | **%s ms** | %s ms | %s ms | %s / %s | %d |", r.Rate, r.AddP50, r.AddP90, r.AddP99, r.HopCPU, ms(d.P50), ms(d.P99), errs)
	}
	p("")
	p("Dapr's published figures: %s.", daprPublished)

	p("")
	p("## Event latency: order stored → notification stored (one run per broker)")
	p("")
	p("| broker | orders | rate/s | p50 | p99 | max |")
	p("| --- | --- | --- | --- | --- | --- |")
	for _, e := range rep.Events {
		p("| %s | %d | %d | %s | %s | %s |", e.Broker, e.Orders, e.Rate, ms(e.P50), ms(e.P99), ms(e.Max))
	}
	p("")
	p("## Idle footprint")
	p("")
	p("| process | CPU (mCPU) | RSS MB | peak RSS MB |")
	p("| --- | --- | --- | --- |")
	for _, u := range rep.Idle {
		p("| %s | %.0f | %.1f | %.1f |", u.Process, u.MilliCPU, u.RSSMB, u.PeakMB)
	}
	return b.String()
}

func procTable(p func(string, ...any), procs []ProcCPU) {
	p("| process | group | CPU ms/order | mCPU |")
	p("| --- | --- | --- | --- |")
	for _, u := range procs {
		if u.Group == GroupLoad {
			continue
		}
		p("| %s | %s | %s | %.0f |", u.Process, u.Group, u.MsOrder, u.MilliCPU.Median)
	}
}

func costTable(p func(string, ...any), costs []Cost) {
	p("| | CPU ms/order | share | in apps | in sidecars | top functions (flat, ms/order) |")
	p("| --- | --- | --- | --- | --- | --- |")
	for _, c := range costs {
		var apps, side float64
		for _, g := range c.ByGroup {
			switch g.Group {
			case GroupApp:
				apps = g.MsOrder
			case GroupSidecar:
				side = g.MsOrder
			}
		}
		p("| %s | **%.3f** | %.0f%% | %.3f | %.3f | %s |", c.Name, c.MsOrder, 100*c.Share, apps, side, topFuncs(c.Top, 3))
	}
}

func topFuncs(fs []FuncMs, n int) string {
	var parts []string
	for _, f := range fs[:min(n, len(fs))] {
		parts = append(parts, fmt.Sprintf("`%s` %.3f", shortFunc(f.Func), f.MsOrder))
	}
	return strings.Join(parts, ", ")
}

// shortFunc drops a function's module path: "github.com/dapr/dapr/pkg/x.F" is "x.F".
func shortFunc(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

func p99s(steps []Step) []float64 {
	var out []float64
	for _, s := range steps {
		out = append(out, float64(s.P99))
	}
	return out
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}
