//go:build bench

package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// Settings, each overridable from the environment for a quicker or longer run.
var (
	stepDuration  = envDuration("BENCH_STEP", 10*time.Second)
	overheadRates = envInts("BENCH_OVERHEAD_RATES", []int{500, 1000})
	orderRates    = envInts("BENCH_ORDER_RATES", []int{100, 150, 200, 250, 300, 400})
	eventRate     = envInts("BENCH_EVENT_RATE", []int{20})[0]
)

// Report is what `make bench` writes, as JSON and as Markdown.
type Report struct {
	When     time.Time         `json:"when"`
	Machine  Machine           `json:"machine"`
	Versions map[string]string `json:"versions"`
	Overhead []OverheadRow     `json:"sidecar_overhead"`
	Orders   []Step            `json:"order_placement"`
	// HighestOrderRate is the highest rate held with p99 <= 100 ms and no errors.
	HighestOrderRate int            `json:"highest_order_rate"`
	Events           []EventLatency `json:"event_latency"`
	Idle             []Usage        `json:"idle_footprint"`
}

// Machine is where the numbers were measured.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

// Step is one fixed-rate attack.
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
}

// OverheadRow compares a direct call with the same call through two sidecars.
type OverheadRow struct {
	Rate    int           `json:"rate"`
	Direct  Step          `json:"direct"`
	Sidecar Step          `json:"via_sidecars"`
	AddP50  time.Duration `json:"added_p50"`
	AddP90  time.Duration `json:"added_p90"`
	AddP99  time.Duration `json:"added_p99"`
}

// EventLatency is the time from an order being stored to its notification
// being stored, per broker.
type EventLatency struct {
	Broker string        `json:"broker"`
	Orders int           `json:"orders"`
	Rate   int           `json:"rate"`
	P50    time.Duration `json:"p50"`
	P99    time.Duration `json:"p99"`
	Max    time.Duration `json:"max"`
}

// Usage is one process's CPU over a step and its resident memory.
type Usage struct {
	Process  string  `json:"process"`
	CPUms    float64 `json:"cpu_ms"`
	MilliCPU float64 `json:"millicpu"` // average over the step, 1000 = one core
	RSSMB    float64 `json:"rss_mb"`
	PeakMB   float64 `json:"peak_rss_mb"`
}

func TestBench(t *testing.T) {
	rep := Report{When: time.Now().UTC(), Machine: machine(), Versions: versions(t)}
	out := outputDir(t)

	// Event latency first, each broker on a fresh system: the order ramp
	// below leaves thousands of events behind it.
	for _, broker := range []string{"redis", "rabbitmq"} {
		sys := harness.Start(t, harness.Options{PubSub: broker})
		rep.Events = append(rep.Events, eventLatency(t, sys, broker))
		sys.Stop()
	}

	sys := harness.Start(t, harness.Options{})
	rep.Idle = usage(sys, nil, 0)
	rep.Overhead = sidecarOverhead(t, sys)
	rep.Orders, rep.HighestOrderRate = orderPlacement(t, sys)
	sys.Stop()

	write(t, out, rep)
}

// sidecarOverhead reads one user directly from users and through the
// gateway's sidecar and users' sidecar, at the same rates, interleaved.
func sidecarOverhead(t *testing.T, sys *harness.System) []OverheadRow {
	u := post(t, sys.GatewayURL()+"/api/users", map[string]any{"name": "Bench", "email": fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())})
	users := sys.App("users")
	// The app's own port wants the token its sidecar sends.
	direct := vegeta.Target{Method: http.MethodGet, URL: users.URL() + "/users/" + u, Header: http.Header{"Dapr-Api-Token": {sys.AppToken}}}
	via := vegeta.Target{Method: http.MethodGet, URL: sys.App("gateway").SidecarURL() + "/v1.0/invoke/" + users.ID + "/method/users/" + u,
		Header: http.Header{"Dapr-Api-Token": {sys.DaprToken}}}
	// Warm both paths: connections, caches.
	attack(t, sys, "warm-direct", direct, 200, 2*time.Second)
	attack(t, sys, "warm-sidecar", via, 200, 2*time.Second)

	var rows []OverheadRow
	for _, rate := range overheadRates {
		// Interleave halves so drift on the machine hits both alike.
		half := stepDuration / 2
		d1 := attack(t, sys, "direct", direct, rate, half)
		s1 := attack(t, sys, "via sidecars", via, rate, half)
		d2 := attack(t, sys, "direct", direct, rate, half)
		s2 := attack(t, sys, "via sidecars", via, rate, half)
		d, s := merge(d1, d2), merge(s1, s2)
		rows = append(rows, OverheadRow{Rate: rate, Direct: d, Sidecar: s, AddP50: s.P50 - d.P50, AddP90: s.P90 - d.P90, AddP99: s.P99 - d.P99})
		t.Logf("overhead at %d/s: +%v p50, +%v p90, +%v p99", rate, s.P50-d.P50, s.P90-d.P90, s.P99-d.P99)
	}
	return rows
}

// orderPlacement places orders through the gateway at rising rates until
// p99 passes 100 ms or errors appear.
func orderPlacement(t *testing.T, sys *harness.System) ([]Step, int) {
	gw := sys.GatewayURL()
	var targets []vegeta.Target
	for i := range 20 {
		u := post(t, gw+"/api/users", map[string]any{"name": "Buyer", "email": fmt.Sprintf("buyer-%d-%d@example.com", i, time.Now().UnixNano())})
		p := post(t, gw+"/api/products", map[string]any{"name": fmt.Sprintf("Item %d", i), "price_cents": 100 + i, "stock": 1_000_000_000})
		body, _ := json.Marshal(map[string]any{"user_id": u, "product_id": p, "quantity": 1})
		targets = append(targets, vegeta.Target{Method: http.MethodPost, URL: gw + "/api/orders", Body: body, Header: http.Header{"Content-Type": {"application/json"}}})
	}
	attackAll(t, sys, "warm-orders", targets, 50, 2*time.Second)
	var steps []Step
	held := 0
	for _, rate := range orderRates {
		s := attackAll(t, sys, "orders", targets, rate, stepDuration)
		steps = append(steps, s)
		t.Logf("orders at %d/s: p50 %v p99 %v errors %d", rate, s.P50, s.P99, s.Errors)
		if s.Errors > 0 || s.P99 > 100*time.Millisecond {
			break
		}
		held = rate
	}
	return steps, held
}

// eventLatency places orders at a moderate rate and measures, per order, the
// time from the order's created_at (stored by orders) to its notification's
// created_at (stored by notifications), both read from one machine's clock.
func eventLatency(t *testing.T, sys *harness.System, broker string) EventLatency {
	gw := sys.GatewayURL()
	u := post(t, gw+"/api/users", map[string]any{"name": "Events", "email": fmt.Sprintf("events-%d@example.com", time.Now().UnixNano())})
	p := post(t, gw+"/api/products", map[string]any{"name": "Evented", "price_cents": 100, "stock": 1_000_000})
	body, _ := json.Marshal(map[string]any{"user_id": u, "product_id": p, "quantity": 1})
	created := map[string]time.Time{}
	tick := time.NewTicker(time.Second / time.Duration(eventRate))
	defer tick.Stop()
	n := eventRate * int(stepDuration/time.Second)
	for range n {
		<-tick.C
		res, err := http.Post(gw+"/api/orders", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("place order: %v", err)
		}
		var o struct {
			ID        string    `json:"id"`
			CreatedAt time.Time `json:"created_at"`
		}
		_ = json.NewDecoder(res.Body).Decode(&o)
		res.Body.Close()
		if res.StatusCode == http.StatusCreated {
			created[o.ID] = o.CreatedAt
		}
	}
	type note struct {
		OrderID   string    `json:"order_id"`
		CreatedAt time.Time `json:"created_at"`
	}
	var notes []note
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		// Every page: the list is read 100 at a time, the next page named
		// by the Next-Cursor header.
		notes = notes[:0]
		cursor := ""
		for {
			res, err := http.Get(gw + "/api/notifications?limit=100&user_id=" + u + "&cursor=" + cursor)
			if err != nil {
				break
			}
			var page []note
			_ = json.NewDecoder(res.Body).Decode(&page)
			res.Body.Close()
			notes = append(notes, page...)
			if cursor = res.Header.Get("Next-Cursor"); cursor == "" {
				break
			}
		}
		if len(notes) >= len(created) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var lat []time.Duration
	for _, note := range notes {
		if at, ok := created[note.OrderID]; ok {
			lat = append(lat, note.CreatedAt.Sub(at))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	el := EventLatency{Broker: broker, Orders: len(lat), Rate: eventRate}
	if len(lat) > 0 {
		el.P50, el.P99, el.Max = pct(lat, 0.50), pct(lat, 0.99), lat[len(lat)-1]
	}
	t.Logf("event latency on %s: %d events, p50 %v p99 %v", broker, len(lat), el.P50, el.P99)
	return el
}

func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted)-1) * q)
	return sorted[i]
}

func attack(t *testing.T, sys *harness.System, name string, target vegeta.Target, rate int, d time.Duration) Step {
	return attackAll(t, sys, name, []vegeta.Target{target}, rate, d)
}

// attackAll runs one fixed-rate, open-model attack over targets in turn, and
// measures every process of the system meanwhile.
func attackAll(t *testing.T, sys *harness.System, name string, targets []vegeta.Target, rate int, d time.Duration) Step {
	t.Helper()
	attacker := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true), vegeta.Connections(1024), vegeta.MaxWorkers(2048))
	before := cpuTimes(sys)
	var m vegeta.Metrics
	for res := range attacker.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: rate, Per: time.Second}, d, name) {
		m.Add(res)
	}
	m.Close()
	s := Step{
		Name: name, Rate: rate, Duration: d, Throughput: m.Throughput,
		P50: m.Latencies.P50, P90: m.Latencies.P90, P99: m.Latencies.P99, Max: m.Latencies.Max,
		Requests: m.Requests, Codes: m.StatusCodes, Processes: usage(sys, before, d),
	}
	for code, n := range m.StatusCodes {
		if !strings.HasPrefix(code, "2") {
			s.Errors += n
		}
	}
	return s
}

// merge combines two halves of one interleaved measurement (latency
// percentiles are averaged: both halves ran at the same rate and length).
func merge(a, b Step) Step {
	m := a
	m.Duration += b.Duration
	m.Requests += b.Requests
	m.Errors += b.Errors
	m.Throughput = (a.Throughput + b.Throughput) / 2
	m.P50, m.P90, m.P99 = (a.P50+b.P50)/2, (a.P90+b.P90)/2, (a.P99+b.P99)/2
	m.Max = max(a.Max, b.Max)
	return m
}

func post(t *testing.T, url string, body any) string {
	t.Helper()
	data, _ := json.Marshal(body)
	res, err := http.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil || v.ID == "" || res.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %v", url, res.StatusCode, err)
	}
	return v.ID
}

// cpuTimes reads each process's user+system CPU time.
func cpuTimes(sys *harness.System) map[int]time.Duration {
	out := map[int]time.Duration{}
	for _, p := range sys.Procs() {
		if !p.Exited() {
			out[p.Pid()] = procCPU(p.Pid())
		}
	}
	return out
}

// usage reports every running process: CPU since before (over d), RSS now,
// peak RSS since it started.
func usage(sys *harness.System, before map[int]time.Duration, d time.Duration) []Usage {
	var out []Usage
	for _, p := range sys.Procs() {
		if p.Exited() {
			continue
		}
		u := Usage{Process: p.Name}
		if before != nil && d > 0 {
			used := procCPU(p.Pid()) - before[p.Pid()]
			u.CPUms = float64(used.Milliseconds())
			u.MilliCPU = 1000 * used.Seconds() / d.Seconds()
		}
		u.RSSMB, u.PeakMB = procMem(p.Pid())
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Process < out[j].Process })
	return out
}

func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return time.Duration((ut + st) / 100 * float64(time.Second)) // USER_HZ is 100 on Linux
}

func procMem(pid int) (rss, peak float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
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
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return def
	}
	return out
}
