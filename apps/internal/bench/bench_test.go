//go:build bench

package bench

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/dapr/benchstat"
	"github.com/ordermesh/ordermesh/dapr/procs"
)

// Settings, each overridable from the environment for a quicker or longer run.
var (
	runs          = envInts("BENCH_RUNS", []int{3})[0]
	stepDuration  = envDuration("BENCH_STEP", 10*time.Second)
	overheadRates = envInts("BENCH_OVERHEAD_RATES", []int{500})
	orderRates    = envInts("BENCH_ORDER_RATES", []int{100, 150, 200, 250, 300, 400})
	eventRate     = envInts("BENCH_EVENT_RATE", []int{20})[0]
	brokers       = envList("BENCH_BROKERS", []string{"redis", "rabbitmq"})
	profileRate   = envInts("BENCH_PROFILE_RATE", []int{100})[0]
	profileFor    = envDuration("BENCH_PROFILE", 10*time.Second)
	variantRate   = envInts("BENCH_VARIANT_RATE", []int{100})[0]
	variantNames  = envList("BENCH_VARIANTS", []string{"fresh", "log-warn", "no-metrics", "gogc-200"})
	// beforeRev, a git revision, adds the apps built from it to the
	// settings compared (BENCH_BEFORE): a code change measured before and
	// after in the same rounds.
	beforeRev = strings.TrimSpace(os.Getenv("BENCH_BEFORE"))
	// budget bounds the whole run: once spent, the remaining steps are
	// skipped and the report says which.
	budget = envDuration("BENCH_BUDGET", 12*time.Minute)
)

// p99Limit is the latency an order rate must hold (median run) to count as held.
const p99Limit = 100 * time.Millisecond

// Report is what `make bench` writes, as JSON and as Markdown.
type Report struct {
	When     time.Time         `json:"when"`
	Took     time.Duration     `json:"took"`
	Machine  Machine           `json:"machine"`
	Versions map[string]string `json:"versions"`
	Runs     int               `json:"runs"`
	Step     time.Duration     `json:"step"`
	Overhead []OverheadConfig  `json:"sidecar_overhead"`
	Orders   []Config          `json:"order_placement"`
	// HighestOrderRate is the highest rate whose median run (by p99) held
	// p99 <= 100 ms with no errors.
	HighestOrderRate int            `json:"highest_order_rate"`
	Profile          *ProfileRun    `json:"profile,omitempty"`
	Variants         []Config       `json:"variants,omitempty"`
	Events           []EventLatency `json:"event_latency"`
	Idle             []Usage        `json:"idle_footprint"`
	Skipped          []string       `json:"skipped,omitempty"`
	Notes            []string       `json:"notes,omitempty"`
}

// Machine is where the numbers were measured.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

// Step is one fixed-rate attack and what every process used meanwhile.
type Step struct {
	Name       string         `json:"name"`
	Rate       int            `json:"rate"`
	Duration   time.Duration  `json:"duration"`
	Throughput float64        `json:"throughput"`
	P50        time.Duration  `json:"p50"`
	P90        time.Duration  `json:"p90"`
	P99        time.Duration  `json:"p99"`
	Max        time.Duration  `json:"max"`
	Requests   uint64         `json:"requests"`
	Errors     int            `json:"errors"`
	Codes      map[string]int `json:"status_codes"`
	Processes  []Usage        `json:"processes"`
	CPU        Totals         `json:"cpu_ms_per_request"`
	Settled    bool           `json:"settled_before"` // the system was idle when the step began
	// LoadAvg is the machine's 1-minute load average as the step began:
	// other work on the shared cores, beside the system's own.
	LoadAvg float64 `json:"load_average_1m"`
}

// Config is one configuration (a rate, a sidecar setting) run `runs` times.
type Config struct {
	Name string           `json:"name"`
	Note string           `json:"note,omitempty"`
	Rate int              `json:"rate"`
	Runs []Step           `json:"runs"`
	P50  benchstat.Spread `json:"p50_ms"`
	P99  benchstat.Spread `json:"p99_ms"`
	Tput benchstat.Spread `json:"throughput"`
	Apps benchstat.Spread `json:"apps_cpu_ms_per_order"`
	Side benchstat.Spread `json:"sidecars_cpu_ms_per_order"`
	Sys  benchstat.Spread `json:"apps_and_sidecars_cpu_ms_per_order"`
	Serv benchstat.Spread `json:"servers_cpu_ms_per_order"`
	All  benchstat.Spread `json:"all_cpu_ms_per_order"`
	Load benchstat.Spread `json:"load_generator_cpu_ms_per_order"`
	// LoadAvg is the machine's 1-minute load average as each run began.
	LoadAvg benchstat.Spread `json:"load_average_1m"`
	Procs   []ProcCPU        `json:"per_process"`
	// Median is the index in Runs of the median run by p99.
	Median int `json:"median_run"`
	// Unsettled counts the runs that began before the system was idle
	// again (work left from the run before was counted in them).
	Unsettled int `json:"unsettled_runs"`
	// Failed counts the runs with errors.
	Failed int `json:"runs_with_errors"`
}

// caveat says what makes a configuration's figures less comparable.
func (c Config) caveat() string {
	var out []string
	if c.Failed > 0 {
		out = append(out, fmt.Sprintf("%d of %d runs had errors", c.Failed, len(c.Runs)))
	}
	if c.Unsettled > 0 {
		out = append(out, fmt.Sprintf("%d of %d runs began before the system was idle", c.Unsettled, len(c.Runs)))
	}
	return strings.Join(out, "; ")
}

// ProcCPU is one process's CPU per order over the runs.
type ProcCPU struct {
	Process  string           `json:"process"`
	Group    string           `json:"group"`
	MsOrder  benchstat.Spread `json:"cpu_ms_per_order"`
	MilliCPU benchstat.Spread `json:"millicpu"`
}

// Held reports whether the median run held p99 <= 100 ms with no errors.
func (c Config) Held() bool {
	if c.Median < 0 {
		return false
	}
	m := c.Runs[c.Median]
	return m.Errors == 0 && m.P99 <= p99Limit
}

func summarize(name, note string, rate int, steps []Step) Config {
	c := Config{Name: name, Note: note, Rate: rate, Runs: steps}
	pick := func(f func(Step) float64) benchstat.Spread {
		var v []float64
		for _, s := range steps {
			v = append(v, f(s))
		}
		return benchstat.SpreadOf(v)
	}
	c.P50 = pick(func(s Step) float64 { return msf(s.P50) })
	c.P99 = pick(func(s Step) float64 { return msf(s.P99) })
	c.Tput = pick(func(s Step) float64 { return s.Throughput })
	c.Apps = pick(func(s Step) float64 { return s.CPU.Apps })
	c.Side = pick(func(s Step) float64 { return s.CPU.Sidecar })
	c.Sys = pick(func(s Step) float64 { return s.CPU.System })
	c.Serv = pick(func(s Step) float64 { return s.CPU.Servers })
	c.All = pick(func(s Step) float64 { return s.CPU.All })
	c.Load = pick(func(s Step) float64 { return s.CPU.Load })
	c.LoadAvg = pick(func(s Step) float64 { return s.LoadAvg })
	var p99s []float64
	for _, s := range steps {
		p := msf(s.P99)
		if s.Errors > 0 {
			p += 1e9 // a run with errors ranks above any latency
		}
		p99s = append(p99s, p)
	}
	c.Median = benchstat.MedianIndex(p99s)
	for _, s := range steps {
		if !s.Settled {
			c.Unsettled++
		}
		if s.Errors > 0 {
			c.Failed++
		}
	}
	if len(steps) > 0 {
		for _, u := range steps[0].Processes {
			var ms, mc []float64
			for _, s := range steps {
				for _, v := range s.Processes {
					if v.Process == u.Process {
						ms, mc = append(ms, v.MsOrder), append(mc, v.MilliCPU)
					}
				}
			}
			c.Procs = append(c.Procs, ProcCPU{Process: u.Process, Group: u.Group, MsOrder: benchstat.SpreadOf(ms), MilliCPU: benchstat.SpreadOf(mc)})
		}
	}
	return c
}

// bench carries what every part of a run shares.
type bench struct {
	t       *testing.T
	start   time.Time
	rep     *Report
	out     string
	stamp   string
	skipped []string
}

// spent reports whether the time budget is gone, and notes what is skipped.
func (b *bench) spent(what string) bool {
	if time.Since(b.start) < budget {
		return false
	}
	b.rep.Skipped = append(b.rep.Skipped, what)
	b.t.Logf("bench: budget of %v spent, skipping %s", budget, what)
	return true
}

func TestBench(t *testing.T) {
	b := &bench{t: t, start: time.Now()}
	b.rep = &Report{When: time.Now().UTC(), Machine: machine(), Versions: versions(t), Runs: runs, Step: stepDuration}
	b.out = outputDir(t)
	b.stamp = b.rep.When.Format("20060102-150405")
	t.Logf("bench: %d runs of %v per configuration, budget %v, report in %s", runs, stepDuration, budget, b.out)

	// Event latency first, each broker on a fresh system: the order ramp
	// below leaves events behind it. One run each: the figure is Dapr's
	// outbox's fixed one-second hold.
	for _, broker := range brokers {
		if b.spent("event latency on " + broker) {
			continue
		}
		phase := time.Now()
		sys := harness.Start(t, harness.Options{PubSub: broker})
		b.rep.Events = append(b.rep.Events, eventLatency(t, sys, broker))
		sys.Stop()
		t.Logf("bench: event latency on %s took %v", broker, time.Since(phase).Round(time.Second))
	}

	phase := time.Now()
	opts, endpoints := profilingOptions(t)
	sys := harness.Start(t, opts)
	m := newMeter(sys)
	m.settle(10 * time.Second)
	ps := m.procs()
	idle := m.read(ps)
	time.Sleep(2 * time.Second)
	b.rep.Idle = usage(idle, m.read(ps), 0)
	t.Logf("bench: system started in %v", time.Since(phase).Round(time.Second))

	phase = time.Now()
	b.rep.Overhead = sidecarOverhead(b, sys, m)
	t.Logf("bench: sidecar overhead took %v", time.Since(phase).Round(time.Second))

	phase = time.Now()
	targets := orderTargets(t, sys)
	b.rep.Orders, b.rep.HighestOrderRate = orderPlacement(b, m, targets)
	t.Logf("bench: order placement took %v", time.Since(phase).Round(time.Second))

	if !b.spent("profiles") {
		phase = time.Now()
		b.rep.Profile = profileOrders(b, m, targets, endpoints)
		t.Logf("bench: profiles took %v", time.Since(phase).Round(time.Second))
	}

	if (len(variantNames) > 0 || beforeRev != "") && !b.spent("sidecar settings") {
		phase = time.Now()
		b.rep.Variants = compareVariants(b, sys, m, targets)
		t.Logf("bench: sidecar settings took %v", time.Since(phase).Round(time.Second))
	}
	sys.Stop()

	b.rep.Took = time.Since(b.start).Round(time.Second)
	write(t, b.out, *b.rep)
}

// orderTargets makes 20 buyers and 20 products with stock for any run, and
// one order request per pair.
func orderTargets(t *testing.T, sys *harness.System) []vegeta.Target {
	gw := newGateway(t, sys)
	var targets []vegeta.Target
	for i := range 20 {
		u := gw.create(t, "/api/users", map[string]any{"name": "Buyer", "email": fmt.Sprintf("buyer-%d-%d@example.com", i, time.Now().UnixNano())})
		p := gw.create(t, "/api/products", map[string]any{"name": fmt.Sprintf("Item %d", i), "price_cents": 100 + i, "stock": 1_000_000_000})
		targets = append(targets, gw.target(http.MethodPost, "/api/orders", map[string]any{"user_id": u, "product_id": p, "quantity": 1}))
	}
	return targets
}

// orderPlacement places orders through the gateway at rising rates, `runs`
// times each, until the median run of a rate fails p99 <= 100 ms or has errors.
func orderPlacement(b *bench, m *meter, targets []vegeta.Target) ([]Config, int) {
	attackAll(b.t, m, "warm-orders", targets, 50, 2*time.Second)
	var configs []Config
	held := 0
	for _, rate := range orderRates {
		if b.spent(fmt.Sprintf("orders at %d/s", rate)) {
			break
		}
		var steps []Step
		for i := range runs {
			s := attackAll(b.t, m, "orders", targets, rate, stepDuration)
			b.t.Logf("orders at %d/s, run %d: p50 %v p99 %v errors %d; CPU per order: apps+sidecars %.2f ms, servers %.2f ms, load generator %.2f ms; load average %.1f",
				rate, i+1, s.P50, s.P99, s.Errors, s.CPU.System, s.CPU.Servers, s.CPU.Load, s.LoadAvg)
			steps = append(steps, s)
		}
		c := summarize(fmt.Sprintf("orders at %d/s", rate), "", rate, steps)
		configs = append(configs, c)
		if !c.Held() {
			break
		}
		held = rate
	}
	return configs, held
}

// attackAll runs one fixed-rate, open-model attack over targets in turn,
// after the system settled, and measures every process meanwhile.
func attackAll(t *testing.T, m *meter, name string, targets []vegeta.Target, rate int, d time.Duration) Step {
	t.Helper()
	_, settled := m.settle(15 * time.Second)
	attacker := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true), vegeta.Connections(1024), vegeta.MaxWorkers(2048))
	ps := m.procs()
	load := procs.LoadAverage()
	before := m.read(ps)
	var mt vegeta.Metrics
	for res := range attacker.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: rate, Per: time.Second}, d, name) {
		mt.Add(res)
	}
	after := m.read(ps)
	mt.Close()
	s := Step{
		Name: name, Rate: rate, Duration: d, Throughput: mt.Throughput,
		P50: mt.Latencies.P50, P90: mt.Latencies.P90, P99: mt.Latencies.P99, Max: mt.Latencies.Max,
		Requests: mt.Requests, Codes: mt.StatusCodes, Settled: settled, LoadAvg: load,
	}
	for code, n := range mt.StatusCodes {
		if !strings.HasPrefix(code, "2") {
			s.Errors += n
		}
	}
	// Per order sent, failed or not: a call the client gave up on was
	// usually placed anyway, and its CPU spent either way.
	s.Processes = usage(before, after, int(s.Requests))
	s.CPU = totals(s.Processes)
	return s
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.Memory = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(data), "\n", 2)[0], "MemTotal:"))
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

func versions(t *testing.T) map[string]string {
	v := map[string]string{"go": runtime.Version(), "vegeta": "v12.13.0"}
	if out, err := runOut(harness.DaprdPath(t), "--version"); err == nil {
		v["daprd"] = strings.TrimSpace(out)
	}
	return v
}

func outputDir(t *testing.T) string {
	dir := os.Getenv("BENCH_OUT")
	if dir == "" {
		dir = filepath.Join(harness.RepoRoot(t), ".bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envInts(name string, def []int) []int {
	var out []int
	for _, s := range envList(name, nil) {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return def
	}
	return out
}

// envList reads a comma-separated list; "none" is the empty list.
func envList(name string, def []string) []string {
	v := strings.TrimSpace(os.Getenv(name))
	switch v {
	case "":
		return def
	case "none":
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// msf is a duration in milliseconds.
func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
