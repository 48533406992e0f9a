//go:build k8s && k8sbench

package k8stest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/dapr/benchstat"
)

// writeReport prints the report and writes it to .bench/k8s.md and
// .bench/k8s.json (git-ignored), and a copy named by its time.
func writeReport(t *testing.T, c *cluster, rep benchReport) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(filepath.Dir(c.state)), ".bench") // .run/k8s -> the checkout
	require.NoError(t, os.MkdirAll(dir, 0o755))
	js, err := json.MarshalIndent(rep, "", "  ")
	require.NoError(t, err)
	md := rep.markdown()
	stamp := rep.When.Format("20060102-150405")
	for name, data := range map[string][]byte{"k8s.md": []byte(md), "k8s.json": js, "k8s-" + stamp + ".md": []byte(md)} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	t.Logf("report written to %s\n\n%s", filepath.Join(dir, "k8s.md"), md)
}

func (rep benchReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# ordermesh on Kubernetes: CPU per order, %s", rep.When.Format(time.RFC3339))
	p("")
	p("Machine: %s. One node: Kubernetes %s, Dapr's control plane from its chart (operator, Sentry, injector), daprd image %s.", rep.Machine, rep.Kubernetes, rep.Dapr)
	p("The %s overlay: %s; every app pod runs the app and its injected daprd (mTLS between sidecars).", rep.Overlay, podList(rep.Pods))
	p("Orders (`POST /api/orders`, 20 customers each ordering their own product) sent by vegeta from the test process on the same machine")
	p("to the gateway's Service address (kube-proxy, iptables) at %d/s for %v, %d runs, each begun once the apps and sidecars were idle.", rep.Rate, rep.Step, len(rep.Runs))
	p("CPU read before and after each run: every container's cgroup (all its processes, PostgreSQL's backends included), the node's own")
	p("processes (`/proc/<pid>/stat`: etcd, containerd and its shims, the API server, controller manager, scheduler, kubelet, kube-proxy) and the")
	p("test process. Figures are `median (min–max)` over the runs, ✓ when the runs agree within %.0f%% ((max−min)/median), ✗ when not,", benchstat.StableSpread*100)
	p("per order sent. Load average (1 min) as the runs began: %s. From the cluster's boot to this report: %v.", rep.LoadAvg.Loads(), rep.Took)
	var caveats []string
	if rep.Failed > 0 {
		caveats = append(caveats, fmt.Sprintf("%d of %d runs had orders not answered 201", rep.Failed, len(rep.Runs)))
	}
	if rep.Unidle > 0 {
		caveats = append(caveats, fmt.Sprintf("%d of %d runs began before the apps and sidecars were idle", rep.Unidle, len(rep.Runs)))
	}
	if len(caveats) > 0 {
		p("")
		p("**Caveats:** %s.", strings.Join(caveats, "; "))
	}

	p("")
	p("## CPU per order")
	p("")
	p("| at %d orders/s | ms per order |", rep.Rate)
	p("| --- | --- |")
	p("| apps + sidecars | **%s** |", rep.CPU.AppsSidecars)
	p("| of which the sidecars | %s |", rep.CPU.Sidecars)
	p("| of which the apps | %s |", rep.CPU.Apps)
	p("| servers (Redis, PostgreSQL%s) | %s |", map[bool]string{true: ", RabbitMQ", false: ""}[rep.Pods["rabbitmq"] > 0], rep.CPU.Servers)
	p("| Dapr's control plane | %s |", rep.CPU.Control)
	p("| Kubernetes (node processes, CoreDNS) | %s |", rep.CPU.Kubernetes)
	p("| load generator | %s |", rep.CPU.Load)
	p("| the whole machine, busy (everything on it, other people's work too) | %s |", rep.CPU.Machine)
	p("| of which softirq (the kernel's packet work: bridge, veths, iptables) | %s |", rep.CPU.Softirq)
	p("")
	p("The machine's cores busy during the runs (everything on it): %s of %d.", rep.CPU.BusyCores, runtime.NumCPU())

	p("")
	p("## At rest")
	p("")
	p("The cluster with no orders for %.0f s, once idle (probes, health checks, metrics, the control planes' loops); every run's", rep.Rest.Seconds)
	p("CPU includes this much, shown as ms per order at %d/s (mCPU ÷ rate). The machine: %.2f cores busy.", rep.Rate, rep.Rest.BusyCores)
	p("")
	p("| group | mCPU | as ms per order at %d/s |", rep.Rate)
	p("| --- | --- | --- |")
	for _, g := range []string{groupApp, groupSidecar, groupServer, groupControl, groupKube, groupLoad} {
		p("| %s | %.1f | %.2f |", g, rep.Rest.Groups[g], rep.Rest.Groups[g]/float64(rep.Rate))
	}

	p("")
	p("## Per process kind (every replica summed)")
	p("")
	rest := map[string]float64{}
	for _, k := range rep.Rest.Kinds {
		rest[k.Kind] = k.MilliCPU
	}
	p("| process | group | containers / processes | CPU ms/order | mCPU (median) | mCPU at rest |")
	p("| --- | --- | --- | --- | --- | --- |")
	for _, k := range rep.Kinds {
		p("| %s | %s | %d | %s | %.0f | %.1f |", k.Kind, k.Group, k.Count, k.MsOrder, k.MilliCPU.Median, rest[k.Kind])
	}

	p("")
	p("## Runs")
	p("")
	p("Latency over the runs: p50 %s ms, p90 %s ms, p99 %s ms.", rep.P50, rep.P90, rep.P99)
	p("")
	p("| run | load average (1 min) at start | idle first | orders | throughput/s | p50 | p90 | p99 | max | answers | apps + sidecars ms/order | machine busy (cores) |")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for i, r := range rep.Runs {
		idle := fmt.Sprintf("yes (%.1f s)", r.Waited.Seconds())
		if !r.Settled {
			idle = fmt.Sprintf("**no** (waited %.0f s)", r.Waited.Seconds())
		}
		p("| %d | %.1f | %s | %d | %.1f | %s | %s | %s | %s | %s | %.2f | %.2f |", i+1, r.LoadAvg, idle, r.Requests, r.Throughput,
			msText(r.P50), msText(r.P90), msText(r.P99), msText(r.Max), answers(r.Codes), r.CPU.AppsSidecars, r.CPU.BusyCores)
	}
	for i, r := range rep.Runs {
		for _, e := range r.Errors[:min(3, len(r.Errors))] {
			p("")
			p("Run %d, e.g.: `%.200s`", i+1, e)
		}
	}
	return b.String()
}

// answers is "201: 998, 503: 2, no answer: 1".
func answers(codes map[string]int) string {
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		name := k
		if k == "0" {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, codes[k]))
	}
	return strings.Join(parts, ", ")
}

// podList is "gateway 2, users 2, ..., redis 1, postgres 1", in the
// apps' order, then the servers'.
func podList(pods map[string]int) string {
	var parts []string
	for _, name := range append(append([]string{}, apps...), "redis", "postgres", "rabbitmq") {
		if n, ok := pods[name]; ok && n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	return "ready pods: " + strings.Join(parts, ", ")
}

func msText(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// clusterInfo is what the cluster ran: Kubernetes' version, the daprd
// image injected, and the ready pods of every app and server.
func clusterInfo(t *testing.T, c *cluster) (kube, daprd string, pods map[string]int) {
	t.Helper()
	var v struct {
		Server struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	require.NoError(t, json.Unmarshal([]byte(c.mustKubectl("version", "-o", "json")), &v))
	daprd = c.mustKubectl("get", "pods", "-l", "app.kubernetes.io/name=orders", "-o", `jsonpath={.items[0].spec.containers[?(@.name=="daprd")].image}`)
	pods = map[string]int{}
	for _, name := range append(append([]string{}, apps...), "redis", "postgres", "rabbitmq") {
		if n := len(c.appPods(name)); n > 0 {
			pods[name] = n
		}
	}
	return v.Server.GitVersion, strings.TrimSpace(daprd), pods
}

// machine is "<cpu model>, 2 cores, 24 GB, Linux 6.18, go1.26.8".
func machine() string {
	cpu, mem, kernel := "unknown CPU", "", ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
		if len(f) >= 2 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			mem = fmt.Sprintf("%.0f GB", kb/1024/1024)
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("%s, %d cores, %s, Linux %s, %s", cpu, runtime.NumCPU(), mem, kernel, runtime.Version())
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, name)
	require.Positive(t, d, name)
	return d
}
