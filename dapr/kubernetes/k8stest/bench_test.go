//go:build k8s && k8sbench

package k8stest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ordermesh/ordermesh/dapr/benchstat"
	"github.com/ordermesh/ordermesh/dapr/procs"
)

// cgroupRoot is where this machine mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// TestBench (`make k8s-bench`, build tags k8s and k8sbench) measures what an
// order costs on the cluster: it boots the single-node cluster with the
// redis overlay as TestCluster does (every app 2 replicas, each with its
// daprd), places orders through the gateway's Service at a fixed rate
// (vegeta, open model, from this process), and reads the CPU time of every
// container (its cgroup) and of the node's own processes before and after
// each run. It prints the report, writes .bench/k8s.md and .bench/k8s.json,
// and tears the cluster down, checking that nothing of it is left. It
// asserts no speed.
//
// K8S_BENCH_RATE sets the orders per second (default 100), K8S_BENCH_RUNS
// the runs (default 3), K8S_BENCH_STEP the length of each (default 10s).
func TestBench(t *testing.T) {
	began := time.Now()
	rate := envInt(t, "K8S_BENCH_RATE", 100)
	runs := envInt(t, "K8S_BENCH_RUNS", 3)
	step := envDuration(t, "K8S_BENCH_STEP", 10*time.Second)
	require.Positive(t, rate, "K8S_BENCH_RATE")
	require.Positive(t, runs, "K8S_BENCH_RUNS")
	t.Logf("k8s bench: %d runs of %v at %d orders/s; the cluster first (about 3 minutes warm)", runs, step, rate)

	c := upCluster(t, "redis")
	t.Run("every pod 2/2, two or more per app", func(t *testing.T) { checkPods(t, c) })
	gw := newGatewayClient("http://" + c.mustKubectl("get", "svc", "gateway", "-o", "jsonpath={.spec.clusterIP}"))

	phase := time.Now()
	s := newShop(t, gw, 20, 20, 1_000_000_000)
	targets := orderTargets(t, gw, s)
	t.Logf("k8s bench: 20 users and 20 products made in %s", time.Since(phase).Round(time.Second))

	rep := benchReport{When: time.Now().UTC(), Machine: machine(), Overlay: "redis", Rate: rate, Step: step}
	rep.Kubernetes, rep.Dapr, rep.Pods = clusterInfo(t, c)

	// Not measured: the first calls open every connection between the
	// replicas (and to the stores), as the local bench's warm-up does.
	phase = time.Now()
	warm := attack(targets, 50, 2*time.Second)
	t.Logf("k8s bench: warm-up (50/s for 2s, not measured) in %s: %d orders, answers %v", time.Since(phase).Round(time.Second), warm.Requests, warm.StatusCodes)

	phase = time.Now()
	rep.Rest = atRest(t, c, step)
	t.Logf("k8s bench: at rest for %v (no orders) in %s: apps %.0f mCPU, sidecars %.0f, servers %.0f, Dapr control plane %.0f, Kubernetes %.0f; the machine %.2f cores busy",
		step, time.Since(phase).Round(time.Second), rep.Rest.Groups[groupApp], rep.Rest.Groups[groupSidecar], rep.Rest.Groups[groupServer],
		rep.Rest.Groups[groupControl], rep.Rest.Groups[groupKube], rep.Rest.BusyCores)

	for i := range runs {
		phase = time.Now()
		r := measure(t, c, targets, rate, step)
		rep.Runs = append(rep.Runs, r)
		t.Logf("k8s bench: run %d of %d in %s (%s idle first): load average %.1f; %d orders, p50 %v p90 %v p99 %v, answers %s; CPU per order: apps+sidecars %.2f ms (sidecars %.2f), servers %.2f, Dapr control plane %.2f, Kubernetes %.2f, load generator %.2f",
			i+1, runs, time.Since(phase).Round(time.Second), r.Waited.Round(100*time.Millisecond), r.LoadAvg, r.Requests, r.P50, r.P90, r.P99, answers(r.Codes),
			r.CPU.AppsSidecars, r.CPU.Sidecars, r.CPU.Servers, r.CPU.Control, r.CPU.Kubernetes, r.CPU.Load)
		if len(r.Missing) > 0 {
			t.Errorf("run %d: CPU not read at both ends (restarted or ended during the run, not counted): %s", i+1, strings.Join(r.Missing, ", "))
		}
	}
	rep.summarize()
	rep.Took = time.Since(began).Round(time.Second)
	writeReport(t, c, rep)
}

// orderTargets is one order request per (user, product) pair of the shop,
// each with the bearer token of its customer, for vegeta to send in turn.
func orderTargets(t *testing.T, gw *gatewayClient, s shop) []vegeta.Target {
	t.Helper()
	var targets []vegeta.Target
	for i := range min(len(s.users), len(s.products)) {
		body := map[string]any{"user_id": s.users[i].ID, "product_id": s.products[i].ID, "quantity": 1}
		data, err := json.Marshal(body)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, gw.base+"/api/orders", nil)
		require.NoError(t, err)
		require.NoError(t, gw.authorize(req, gw.callerOf("/api/orders", body)))
		req.Header.Set("Content-Type", "application/json")
		targets = append(targets, vegeta.Target{Method: http.MethodPost, URL: req.URL.String(), Body: data, Header: req.Header})
	}
	require.NotEmpty(t, targets)
	return targets
}

// attack sends targets in turn at a fixed rate for d (open model: a slow
// answer does not slow the sending) and returns vegeta's figures.
func attack(targets []vegeta.Target, rate int, d time.Duration) vegeta.Metrics {
	attacker := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true), vegeta.Connections(1024), vegeta.MaxWorkers(2048))
	var m vegeta.Metrics
	for res := range attacker.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: rate, Per: time.Second}, d, "orders") {
		m.Add(res)
	}
	m.Close()
	return m
}

// restCPU is what the cluster uses with no orders, averaged over a step:
// the part of every run's CPU that is not the orders' (probes, health
// checks, metrics, the control planes' loops).
type restCPU struct {
	Seconds   float64            `json:"seconds"`
	Groups    map[string]float64 `json:"millicpu_by_group"`
	Kinds     []kindUsage        `json:"per_kind"`
	BusyCores float64            `json:"machine_busy_cores"`
}

// atRest measures the cluster for d with no load, once it is idle.
func atRest(t *testing.T, c *cluster, d time.Duration) restCPU {
	t.Helper()
	srcs := c.cpuSources(cgroupRoot)
	settle(srcs, 20*time.Second)
	before := read(srcs)
	time.Sleep(d) // the measuring window itself, as a run's attack is
	after := read(srcs)
	kinds, missing := usage(srcs, before, after, 0)
	if len(missing) > 0 {
		t.Errorf("at rest: CPU not read at both ends: %s", strings.Join(missing, ", "))
	}
	r := restCPU{Seconds: after.at.Sub(before.at).Seconds(), Groups: map[string]float64{}, Kinds: kinds,
		BusyCores: totalsOf(nil, before, after, 0).BusyCores}
	for _, k := range kinds {
		r.Groups[k.Group] += k.MilliCPU
	}
	return r
}

// benchRun is one measured run.
type benchRun struct {
	LoadAvg    float64        `json:"load_average_1m"` // as the run began
	Settled    bool           `json:"settled_before"`  // apps and sidecars were idle when it began
	Waited     time.Duration  `json:"waited_for_idle"`
	Requests   uint64         `json:"orders"`
	Throughput float64        `json:"throughput"`
	P50        time.Duration  `json:"p50"`
	P90        time.Duration  `json:"p90"`
	P99        time.Duration  `json:"p99"`
	Max        time.Duration  `json:"max"`
	Codes      map[string]int `json:"status_codes"` // "0": no answer
	Errors     []string       `json:"errors,omitempty"`
	Kinds      []kindUsage    `json:"per_kind"`
	CPU        totals         `json:"cpu_ms_per_order"`
	Missing    []string       `json:"not_read,omitempty"`
}

// failed counts the orders not answered 201.
func (r benchRun) failed() int {
	n := 0
	for code, k := range r.Codes {
		if code != "201" {
			n += k
		}
	}
	return n
}

// measure waits until the apps and sidecars are idle, then runs one attack
// between two readings of every source's CPU.
func measure(t *testing.T, c *cluster, targets []vegeta.Target, rate int, d time.Duration) benchRun {
	t.Helper()
	srcs := c.cpuSources(cgroupRoot)
	waited, settled := settle(srcs, 20*time.Second)
	r := benchRun{LoadAvg: procs.LoadAverage(), Settled: settled, Waited: waited}
	before := read(srcs)
	m := attack(targets, rate, d)
	after := read(srcs)
	r.Requests, r.Throughput = m.Requests, m.Throughput
	r.P50, r.P90, r.P99, r.Max = m.Latencies.P50, m.Latencies.P90, m.Latencies.P99, m.Latencies.Max
	r.Codes, r.Errors = m.StatusCodes, m.Errors
	// Per order sent, answered or not: an order the client gave up on was
	// usually placed anyway, and its CPU spent either way.
	r.Kinds, r.Missing = usage(srcs, before, after, int(m.Requests))
	r.CPU = totalsOf(r.Kinds, before, after, int(m.Requests))
	return r
}

// settle waits until the apps and sidecars together use under 10% of a core
// over a second (the last run's events and the outbox's one-second hold
// drained), or until the deadline: the local bench's rule.
func settle(srcs []cpuSource, deadline time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < deadline {
		a := read(srcs)
		time.Sleep(time.Second)
		b := read(srcs)
		var busy time.Duration
		for i, s := range srcs {
			if (s.Group == groupApp || s.Group == groupSidecar) && a.cpu[i] >= 0 && b.cpu[i] >= 0 {
				busy += b.cpu[i] - a.cpu[i]
			}
		}
		if float64(busy)/float64(b.at.Sub(a.at)) < 0.10 {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// cpuSources lists everything the bench reads: every running container of
// every pod (the system's, Dapr's control plane, CoreDNS), the node's own
// processes (up.sh's pid files) and containerd's shims, and this process,
// the load generator. A container without a cgroup to read fails the bench:
// a figure silently missing would read as a process that cost nothing.
func (c *cluster) cpuSources(cgroupRoot string) []cpuSource {
	c.t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Namespace string            `json:"namespace"`
				Name      string            `json:"name"`
				UID       string            `json:"uid"`
				Labels    map[string]string `json:"labels"`
			} `json:"metadata"`
			Status struct {
				ContainerStatuses []struct {
					Name        string `json:"name"`
					ContainerID string `json:"containerID"`
					State       struct {
						Running *struct{} `json:"running"`
					} `json:"state"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	require.NoError(c.t, json.Unmarshal([]byte(c.mustKubectl("get", "pods", "-A", "-o", "json")), &list))
	var out []cpuSource
	for _, p := range list.Items {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running == nil {
				continue
			}
			kind, group := kindOf(p.Metadata.Namespace, p.Metadata.Labels, s.Name)
			_, id, _ := strings.Cut(s.ContainerID, "://")
			file, err := containerCgroup(cgroupRoot, p.Metadata.UID, id)
			require.NoError(c.t, err, "%s/%s %s", p.Metadata.Namespace, p.Metadata.Name, s.Name)
			out = append(out, cpuSource{Kind: kind, Group: group, Name: p.Metadata.Name + "/" + s.Name, file: file})
		}
	}
	for name, pid := range c.pidFiles() {
		n, err := strconv.Atoi(pid)
		require.NoError(c.t, err, "pid file %s", name)
		out = append(out, cpuSource{Kind: name, Group: groupKube, Name: name, pid: n})
	}
	for _, pid := range c.shims() {
		out = append(out, cpuSource{Kind: "containerd shims", Group: groupKube, Name: "containerd-shim " + strconv.Itoa(pid), pid: pid})
	}
	return append(out, cpuSource{Kind: "load generator (vegeta)", Group: groupLoad, Name: "this test", pid: os.Getpid()})
}

// shims are the pids of the containerd shims of this cluster's containerd
// (one per pod; they run outside the pods' cgroups and outside containerd).
func (c *cluster) shims() []int {
	sock := filepath.Join(c.state, "containerd", "containerd.sock")
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		cmdline, err := os.ReadFile(dir + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte("containerd-shim")) {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.HasSuffix(filepath.Base(args[0]), "containerd-shim-runc-v2") && slices.Contains(args, sock) {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			out = append(out, pid)
		}
	}
	return out
}

// benchReport is what `make k8s-bench` writes.
type benchReport struct {
	When       time.Time      `json:"when"`
	Took       time.Duration  `json:"took"`
	Machine    string         `json:"machine"`
	Kubernetes string         `json:"kubernetes"`
	Dapr       string         `json:"daprd_image"`
	Overlay    string         `json:"overlay"`
	Pods       map[string]int `json:"ready_pods"` // per app and server
	Rate       int            `json:"rate"`
	Step       time.Duration  `json:"step"`
	Rest       restCPU        `json:"at_rest"`
	Runs       []benchRun     `json:"runs"`

	LoadAvg benchstat.Spread `json:"load_average_1m"`
	P50     benchstat.Spread `json:"p50_ms"`
	P90     benchstat.Spread `json:"p90_ms"`
	P99     benchstat.Spread `json:"p99_ms"`
	CPU     cpuSpread        `json:"cpu_ms_per_order"`
	Kinds   []kindCPU        `json:"per_kind"`
	Failed  int              `json:"runs_with_errors"`
	Unidle  int              `json:"runs_begun_before_idle"`
}

// cpuSpread is each group's CPU per order over the runs.
type cpuSpread struct {
	AppsSidecars benchstat.Spread `json:"apps_and_sidecars"`
	Apps         benchstat.Spread `json:"apps"`
	Sidecars     benchstat.Spread `json:"sidecars"`
	Servers      benchstat.Spread `json:"servers"`
	Control      benchstat.Spread `json:"dapr_control_plane"`
	Kubernetes   benchstat.Spread `json:"kubernetes"`
	Load         benchstat.Spread `json:"load_generator"`
	Machine      benchstat.Spread `json:"machine"`
	Softirq      benchstat.Spread `json:"softirq"`
	BusyCores    benchstat.Spread `json:"machine_busy_cores"`
}

// kindCPU is one kind of process over the runs.
type kindCPU struct {
	Kind     string           `json:"kind"`
	Group    string           `json:"group"`
	Count    int              `json:"count"`
	MsOrder  benchstat.Spread `json:"cpu_ms_per_order"`
	MilliCPU benchstat.Spread `json:"millicpu"`
}

func (rep *benchReport) summarize() {
	pick := func(f func(benchRun) float64) benchstat.Spread {
		var v []float64
		for _, r := range rep.Runs {
			v = append(v, f(r))
		}
		return benchstat.SpreadOf(v)
	}
	msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rep.LoadAvg = pick(func(r benchRun) float64 { return r.LoadAvg })
	rep.P50 = pick(func(r benchRun) float64 { return msOf(r.P50) })
	rep.P90 = pick(func(r benchRun) float64 { return msOf(r.P90) })
	rep.P99 = pick(func(r benchRun) float64 { return msOf(r.P99) })
	rep.CPU = cpuSpread{
		AppsSidecars: pick(func(r benchRun) float64 { return r.CPU.AppsSidecars }),
		Apps:         pick(func(r benchRun) float64 { return r.CPU.Apps }),
		Sidecars:     pick(func(r benchRun) float64 { return r.CPU.Sidecars }),
		Servers:      pick(func(r benchRun) float64 { return r.CPU.Servers }),
		Control:      pick(func(r benchRun) float64 { return r.CPU.Control }),
		Kubernetes:   pick(func(r benchRun) float64 { return r.CPU.Kubernetes }),
		Load:         pick(func(r benchRun) float64 { return r.CPU.Load }),
		Machine:      pick(func(r benchRun) float64 { return r.CPU.Machine }),
		Softirq:      pick(func(r benchRun) float64 { return r.CPU.Softirq }),
		BusyCores:    pick(func(r benchRun) float64 { return r.CPU.BusyCores }),
	}
	for _, r := range rep.Runs {
		if r.failed() > 0 {
			rep.Failed++
		}
		if !r.Settled {
			rep.Unidle++
		}
	}
	if len(rep.Runs) == 0 {
		return
	}
	for _, k := range rep.Runs[0].Kinds {
		var ms, mc []float64
		for _, r := range rep.Runs {
			for _, u := range r.Kinds {
				if u.Kind == k.Kind {
					ms, mc = append(ms, u.MsOrder), append(mc, u.MilliCPU)
				}
			}
		}
		rep.Kinds = append(rep.Kinds, kindCPU{Kind: k.Kind, Group: k.Group, Count: k.Count, MsOrder: benchstat.SpreadOf(ms), MilliCPU: benchstat.SpreadOf(mc)})
	}
}
