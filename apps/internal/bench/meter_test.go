//go:build bench

package bench

import (
	"net"
	"os"
	"sort"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/dapr/procs"
)

// meter reads the CPU of every process an order touches: the system's apps,
// sidecars and Sentry, the servers (Redis, PostgreSQL, RabbitMQ), and this
// process, the load generator, separately.
type meter struct {
	sys       *harness.System
	redisPort string
}

func newMeter(sys *harness.System) *meter {
	_, port, _ := net.SplitHostPort(os.Getenv("ORDERMESH_REDIS"))
	if port == "" {
		port = "6379"
	}
	return &meter{sys: sys, redisPort: port}
}

// procs lists the processes to count now. PostgreSQL's backends are found
// from the system's own connections, so they are listed again at each read.
func (m *meter) procs() []Proc {
	var out []Proc
	var pids []int
	for _, p := range m.sys.Procs() {
		if p.Exited() {
			continue
		}
		group := GroupControl
		switch p.Kind {
		case "app":
			group = GroupApp
		case "sidecar":
			group = GroupSidecar
		}
		out = append(out, Proc{Name: p.Name, Group: group, Pid: p.Pid()})
		pids = append(pids, p.Pid())
	}
	out = append(out, Servers(m.redisPort, pids)...)
	return append(out, Proc{Name: "load generator (vegeta)", Group: GroupLoad, Pid: os.Getpid()})
}

// reading is every counted process's CPU time at one moment.
type reading struct {
	at  time.Time
	cpu map[Proc]time.Duration
}

// read reads the CPU of procs, listed once per step: finding PostgreSQL's
// backends walks every process of the machine, which takes long enough on
// a busy machine to blur a window's edges.
func (m *meter) read(ps []Proc) reading {
	r := reading{at: time.Now(), cpu: map[Proc]time.Duration{}}
	for _, p := range ps {
		if d, err := procs.CPUTime(p.Pid); err == nil {
			r.cpu[p] = d
		}
	}
	return r
}

// Usage is one process's CPU over a step (all same-named processes, such as
// PostgreSQL's backends, summed) and its memory at the end.
type Usage struct {
	Process  string  `json:"process"`
	Group    string  `json:"group"`
	CPUms    float64 `json:"cpu_ms"`
	MilliCPU float64 `json:"millicpu"` // average over the step, 1000 = one core
	MsOrder  float64 `json:"cpu_ms_per_request"`
	RSSMB    float64 `json:"rss_mb"`
	PeakMB   float64 `json:"peak_rss_mb"`
}

// usage is what each process used between two readings, per request done.
// A process that appeared in between (a new database backend) counts from
// zero; one that ended in between is lost, which the servers' pools make rare.
func usage(before, after reading, requests int) []Usage {
	d := after.at.Sub(before.at)
	byName := map[string]*Usage{}
	for p, now := range after.cpu {
		u := byName[p.Name]
		if u == nil {
			u = &Usage{Process: p.Name, Group: p.Group}
			byName[p.Name] = u
		}
		used := now - before.cpu[p]
		u.CPUms += float64(used) / float64(time.Millisecond)
		rss, peak := Memory(p.Pid)
		u.RSSMB += rss
		u.PeakMB += peak
	}
	var out []Usage
	for _, u := range byName {
		if d > 0 {
			u.MilliCPU = u.CPUms / float64(d.Milliseconds()) * 1000
		}
		if requests > 0 {
			u.MsOrder = u.CPUms / float64(requests)
		}
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return groupRank(out[i].Group) < groupRank(out[j].Group)
		}
		return out[i].Process < out[j].Process
	})
	return out
}

func groupRank(g string) int {
	return map[string]int{GroupApp: 0, GroupSidecar: 1, GroupControl: 2, GroupServer: 3, GroupLoad: 4}[g]
}

// Totals is a step's CPU per request, by group.
type Totals struct {
	System  float64 `json:"apps_and_sidecars"` // apps, sidecars and Sentry
	Apps    float64 `json:"apps"`
	Sidecar float64 `json:"sidecars"`
	Servers float64 `json:"servers"` // Redis, PostgreSQL (our backends and its shared processes), RabbitMQ
	All     float64 `json:"all"`     // System + Servers
	Load    float64 `json:"load_generator"`
}

func totals(us []Usage) Totals {
	var t Totals
	for _, u := range us {
		switch u.Group {
		case GroupApp:
			t.Apps += u.MsOrder
			t.System += u.MsOrder
		case GroupSidecar:
			t.Sidecar += u.MsOrder
			t.System += u.MsOrder
		case GroupControl:
			t.System += u.MsOrder
		case GroupServer:
			t.Servers += u.MsOrder
		case GroupLoad:
			t.Load += u.MsOrder
		}
	}
	t.All = t.System + t.Servers
	return t
}

// settle waits until the system's apps and sidecars are back near idle
// (under 10% of a core over half a second: the outbox's one-second hold and
// the events of the last step drained), or until the deadline; it reports
// how long it waited and whether the system settled.
func (m *meter) settle(deadline time.Duration) (time.Duration, bool) {
	start := time.Now()
	ps := m.procs()
	for time.Since(start) < deadline {
		a := m.read(ps)
		time.Sleep(500 * time.Millisecond)
		b := m.read(ps)
		var busy time.Duration
		for p, now := range b.cpu {
			if p.Group == GroupApp || p.Group == GroupSidecar {
				busy += now - a.cpu[p]
			}
		}
		if float64(busy)/float64(b.at.Sub(a.at)) < 0.10 {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}
