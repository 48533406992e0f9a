package k8stest

// What the cluster bench (bench_test.go, build tags k8s and k8sbench)
// reads and how it sums it: plain code with its unit tests, untagged so that
// `make unit` runs them.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/dapr/procs"
)

// The groups the bench sums CPU by.
const (
	groupApp     = "app"
	groupSidecar = "sidecar"
	groupServer  = "server"     // Redis, PostgreSQL, RabbitMQ
	groupControl = "control"    // Dapr's control plane: operator, Sentry, injector (placement, scheduler)
	groupKube    = "kubernetes" // the node's own processes (up.sh's) and CoreDNS
	groupLoad    = "load"       // the load generator: this test process
)

// cpuSource is one thing whose CPU time the bench reads: a container,
// through its cgroup's CPU accounting (which counts every process the
// container ever ran, PostgreSQL's short-lived backends too), or a process
// of the node, through /proc/<pid>/stat.
type cpuSource struct {
	Kind  string // what the report sums by: "orders", "orders sidecar", "redis", "dapr-sentry", "kubelet"
	Group string
	Name  string // the pod and container, or the process: for messages
	file  string // cgroup v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec)
	pid   int    // when file is empty
}

// cpu is the CPU time the source has used since it started.
func (s cpuSource) cpu() (time.Duration, error) {
	if s.file == "" {
		return procs.CPUTime(s.pid)
	}
	data, err := os.ReadFile(s.file)
	if err != nil {
		return 0, err
	}
	return cgroupUsage(filepath.Base(s.file), data)
}

// cgroupUsage reads a cgroup's CPU time: v1's cpuacct.usage is nanoseconds,
// v2's cpu.stat has a line "usage_usec N".
func cgroupUsage(name string, data []byte) (time.Duration, error) {
	if name == "cpuacct.usage" {
		ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		return time.Duration(ns), err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("%s: no usage_usec", name)
}

// containerCgroup finds the file that accounts a container's CPU under the
// kubelet's cgroupfs layout, kubepods[/burstable|/besteffort]/pod<uid>/<id>:
// cgroup v1's cpuacct hierarchy first (this machine's kubelet runs on v1),
// else the v2 tree at root.
func containerCgroup(root, podUID, containerID string) (string, error) {
	for _, h := range []struct{ dir, file string }{{"cpuacct", "cpuacct.usage"}, {"cpu,cpuacct", "cpuacct.usage"}, {"", "cpu.stat"}} {
		var found []string
		for _, qos := range []string{"", "*"} {
			m, _ := filepath.Glob(filepath.Join(root, h.dir, "kubepods", qos, "pod"+podUID, containerID, h.file))
			found = append(found, m...)
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		default:
			return "", fmt.Errorf("pod %s container %s: %d cgroups: %v", podUID, containerID, len(found), found)
		}
	}
	return "", fmt.Errorf("pod %s container %s: no cgroup under %s/{cpuacct,cpu,cpuacct,}/kubepods", podUID, containerID, root)
}

// kindOf says what the report calls a container and which group it counts
// in: in ordermesh, an app pod's container "app" by the app's name and its
// injected "daprd" as "<app> sidecar" (every app pod has exactly these two),
// a server's container by its own name; elsewhere (dapr-system,
// kube-system) the container's own name.
func kindOf(namespace string, labels map[string]string, container string) (kind, group string) {
	name := labels["app.kubernetes.io/name"]
	switch {
	case namespace == "ordermesh" && container == "daprd":
		return name + " sidecar", groupSidecar
	case namespace == "ordermesh" && container == "app":
		return name, groupApp
	case namespace == "ordermesh":
		return container, groupServer
	case namespace == "dapr-system":
		return container, groupControl
	default:
		return container, groupKube
	}
}

// machineCPU is the whole machine's CPU time from /proc/stat: busy (user,
// nice, system, irq, softirq, steal) and, of it, softirq (the kernel's
// packet work: bridge, veths, iptables' NAT of Service addresses), every
// core together, everybody's work included.
type machineCPU struct {
	Busy, Softirq time.Duration
}

func readMachineCPU() machineCPU {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	return parseMachineCPU(data)
}

// parseMachineCPU reads the "cpu" line of /proc/stat (USER_HZ ticks):
// user nice system idle iowait irq softirq steal ...
func parseMachineCPU(data []byte) machineCPU {
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}
	}
	tick := func(i int) time.Duration {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(n) * 10 * time.Millisecond
	}
	return machineCPU{Busy: tick(1) + tick(2) + tick(3) + tick(6) + tick(7) + tick(8), Softirq: tick(7)}
}

// reading is every source's CPU time at one moment (by index in the list
// it was read from; -1 when it could not be read) and the machine's.
type reading struct {
	at      time.Time
	cpu     []time.Duration
	machine machineCPU
}

func read(srcs []cpuSource) reading {
	r := reading{at: time.Now(), cpu: make([]time.Duration, len(srcs)), machine: readMachineCPU()}
	for i, s := range srcs {
		d, err := s.cpu()
		if err != nil {
			d = -1
		}
		r.cpu[i] = d
	}
	return r
}

// kindUsage is one kind of process over a run: every replica summed.
type kindUsage struct {
	Kind     string  `json:"kind"`
	Group    string  `json:"group"`
	Count    int     `json:"count"` // containers or processes summed
	CPUms    float64 `json:"cpu_ms"`
	MilliCPU float64 `json:"millicpu"` // average over the run, 1000 = one core
	MsOrder  float64 `json:"cpu_ms_per_order"`
}

// usage sums what each kind used between two readings, per order sent, and
// names the sources that could not be read at either end (a container
// restarted or a process ended in between): their CPU is not counted.
func usage(srcs []cpuSource, before, after reading, orders int) ([]kindUsage, []string) {
	d := after.at.Sub(before.at)
	byKind := map[string]*kindUsage{}
	var missing []string
	for i, s := range srcs {
		if before.cpu[i] < 0 || after.cpu[i] < 0 {
			missing = append(missing, s.Name)
			continue
		}
		u := byKind[s.Kind]
		if u == nil {
			u = &kindUsage{Kind: s.Kind, Group: s.Group}
			byKind[s.Kind] = u
		}
		u.Count++
		u.CPUms += float64(after.cpu[i]-before.cpu[i]) / float64(time.Millisecond)
	}
	out := make([]kindUsage, 0, len(byKind))
	for _, u := range byKind {
		if d > 0 {
			u.MilliCPU = u.CPUms / float64(d.Milliseconds()) * 1000
		}
		if orders > 0 {
			u.MsOrder = u.CPUms / float64(orders)
		}
		out = append(out, *u)
	}
	rank := map[string]int{groupApp: 0, groupSidecar: 1, groupServer: 2, groupControl: 3, groupKube: 4, groupLoad: 5}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return rank[out[i].Group] < rank[out[j].Group]
		}
		return out[i].Kind < out[j].Kind
	})
	return out, missing
}

// totals is a run's CPU per order by group, and the whole machine's.
type totals struct {
	AppsSidecars float64 `json:"apps_and_sidecars"`
	Apps         float64 `json:"apps"`
	Sidecars     float64 `json:"sidecars"`
	Servers      float64 `json:"servers"`
	Control      float64 `json:"dapr_control_plane"`
	Kubernetes   float64 `json:"kubernetes"`
	Load         float64 `json:"load_generator"`
	// Machine is every core's busy time per order, whoever used it (other
	// work on the shared machine included); Softirq is the kernel's share
	// of it spent in softirq.
	Machine float64 `json:"machine"`
	Softirq float64 `json:"softirq"`
	// BusyCores is how many of the machine's cores were busy on average
	// over the run (everybody's work): at the core count, CPU ran out.
	BusyCores float64 `json:"machine_busy_cores"`
}

func totalsOf(us []kindUsage, before, after reading, orders int) totals {
	var t totals
	for _, u := range us {
		switch u.Group {
		case groupApp:
			t.Apps += u.MsOrder
		case groupSidecar:
			t.Sidecars += u.MsOrder
		case groupServer:
			t.Servers += u.MsOrder
		case groupControl:
			t.Control += u.MsOrder
		case groupKube:
			t.Kubernetes += u.MsOrder
		case groupLoad:
			t.Load += u.MsOrder
		}
	}
	t.AppsSidecars = t.Apps + t.Sidecars
	if orders > 0 {
		t.Machine = float64(after.machine.Busy-before.machine.Busy) / float64(time.Millisecond) / float64(orders)
		t.Softirq = float64(after.machine.Softirq-before.machine.Softirq) / float64(time.Millisecond) / float64(orders)
	}
	if d := after.at.Sub(before.at); d > 0 {
		t.BusyCores = float64(after.machine.Busy-before.machine.Busy) / float64(d)
	}
	return t
}

func TestContainerCgroup(t *testing.T) {
	const uid, id = "0b6c2f1e-8d1a-4c3e-9f00-1234567890ab", "4f1c0ffee"
	tests := []struct {
		name    string
		files   []string // made under the root
		want    string   // "" when an error is expected
		wantErr string
	}{
		{"v1, burstable pod", []string{"cpuacct/kubepods/burstable/pod" + uid + "/" + id + "/cpuacct.usage"},
			"cpuacct/kubepods/burstable/pod" + uid + "/" + id + "/cpuacct.usage", ""},
		{"v1, guaranteed pod (no QoS level)", []string{"cpuacct/kubepods/pod" + uid + "/" + id + "/cpuacct.usage"},
			"cpuacct/kubepods/pod" + uid + "/" + id + "/cpuacct.usage", ""},
		{"v1 combined hierarchy", []string{"cpu,cpuacct/kubepods/besteffort/pod" + uid + "/" + id + "/cpuacct.usage"},
			"cpu,cpuacct/kubepods/besteffort/pod" + uid + "/" + id + "/cpuacct.usage", ""},
		{"v2", []string{"kubepods/burstable/pod" + uid + "/" + id + "/cpu.stat"},
			"kubepods/burstable/pod" + uid + "/" + id + "/cpu.stat", ""},
		{"v1 before v2 on a hybrid machine", []string{
			"cpuacct/kubepods/burstable/pod" + uid + "/" + id + "/cpuacct.usage",
			"kubepods/burstable/pod" + uid + "/" + id + "/cpu.stat",
		}, "cpuacct/kubepods/burstable/pod" + uid + "/" + id + "/cpuacct.usage", ""},
		{"another pod's container only", []string{"cpuacct/kubepods/burstable/podother/" + id + "/cpuacct.usage"}, "", "no cgroup"},
		{"two matches are an error, not a guess", []string{
			"cpuacct/kubepods/burstable/pod" + uid + "/" + id + "/cpuacct.usage",
			"cpuacct/kubepods/besteffort/pod" + uid + "/" + id + "/cpuacct.usage",
		}, "", "2 cgroups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(root, f), []byte("1\n"), 0o644))
			}
			got, err := containerCgroup(root, uid, id)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(root, tt.want), got)
		})
	}
}

func TestCPUReadings(t *testing.T) {
	tests := []struct {
		name string
		read func() (time.Duration, error)
		want time.Duration
		err  bool
	}{
		{"cgroup v1 nanoseconds", func() (time.Duration, error) { return cgroupUsage("cpuacct.usage", []byte("1234567890\n")) }, 1234567890, false},
		{"cgroup v2 usage_usec", func() (time.Duration, error) {
			return cgroupUsage("cpu.stat", []byte("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"))
		}, 2500 * time.Microsecond, false},
		{"cgroup v2 without usage", func() (time.Duration, error) { return cgroupUsage("cpu.stat", []byte("user_usec 1\n")) }, 0, true},
		{"a process gone", func() (time.Duration, error) { return cpuSource{pid: -1}.cpu() }, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read()
			if tt.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	m := parseMachineCPU([]byte("cpu  100 5 50 1000 7 3 20 2 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	assert.Equal(t, machineCPU{Busy: 180 * 10 * time.Millisecond, Softirq: 200 * time.Millisecond}, m, "busy: user+nice+system+irq+softirq+steal")
}

// A process of the node is read through its /proc stat: the reading lies
// between two readings of the same process taken around it, once the
// process has used at least one 10 ms tick (a fresh test process may not).
func TestCPUOfAProcess(t *testing.T) {
	var before time.Duration
	deadline := time.Now().Add(5 * time.Second)
	for x := 0; before == 0 && time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x += i
		}
		var err error
		before, err = procs.CPUTime(os.Getpid())
		require.NoError(t, err)
	}
	require.Positive(t, before, "no CPU tick after 5 s of work")
	got, err := cpuSource{pid: os.Getpid()}.cpu()
	require.NoError(t, err)
	after, err := procs.CPUTime(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, got, before)
	assert.LessOrEqual(t, got, after)
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		namespace, name, container string
		kind, group                string
	}{
		{"ordermesh", "orders", "app", "orders", groupApp},
		{"ordermesh", "notifications", "app", "notifications", groupApp},
		{"ordermesh", "orders", "daprd", "orders sidecar", groupSidecar},
		{"ordermesh", "postgres", "postgres", "postgres", groupServer},
		{"ordermesh", "rabbitmq", "rabbitmq", "rabbitmq", groupServer},
		{"dapr-system", "", "dapr-sentry", "dapr-sentry", groupControl},
		{"kube-system", "", "coredns", "coredns", groupKube},
	}
	for _, tt := range tests {
		t.Run(tt.namespace+"/"+tt.name+"/"+tt.container, func(t *testing.T) {
			kind, group := kindOf(tt.namespace, map[string]string{"app.kubernetes.io/name": tt.name}, tt.container)
			assert.Equal(t, tt.kind, kind)
			assert.Equal(t, tt.group, group)
		})
	}
}

func TestUsage(t *testing.T) {
	srcs := []cpuSource{
		{Kind: "orders", Group: groupApp, Name: "orders-a/app"},
		{Kind: "orders", Group: groupApp, Name: "orders-b/app"},
		{Kind: "orders sidecar", Group: groupSidecar, Name: "orders-a/daprd"},
		{Kind: "redis", Group: groupServer, Name: "redis/redis"},
		{Kind: "kubelet", Group: groupKube, Name: "kubelet"},
	}
	t0 := time.Unix(0, 0)
	before := reading{at: t0, cpu: []time.Duration{0, time.Second, 2 * time.Second, 0, 0}, machine: machineCPU{Busy: time.Second}}
	after := reading{at: t0.Add(10 * time.Second), cpu: []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, -1, 100 * time.Millisecond},
		machine: machineCPU{Busy: 11 * time.Second, Softirq: time.Second}}
	us, missing := usage(srcs, before, after, 1000)
	assert.Equal(t, []string{"redis/redis"}, missing, "a source unreadable at the end is named, not counted as zero")
	assert.Equal(t, []kindUsage{
		{Kind: "orders", Group: groupApp, Count: 2, CPUms: 2000, MilliCPU: 200, MsOrder: 2},
		{Kind: "orders sidecar", Group: groupSidecar, Count: 1, CPUms: 3000, MilliCPU: 300, MsOrder: 3},
		{Kind: "kubelet", Group: groupKube, Count: 1, CPUms: 100, MilliCPU: 10, MsOrder: 0.1},
	}, us)
	assert.Equal(t, totals{AppsSidecars: 5, Apps: 2, Sidecars: 3, Kubernetes: 0.1, Machine: 10, Softirq: 1, BusyCores: 1}, totalsOf(us, before, after, 1000))
}
