package bench

import (
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// A Category names a share of CPU and the function-name fragments that put a
// profile sample in it.
type Category struct {
	Name  string
	Match []string
}

// Purposes say what a sample's CPU was for. A sample goes to the first
// purpose, in this order, that any frame of its stack matches: the outbox's
// publishing runs inside a state transaction and counts as outbox; the
// transport-level purposes near the end take what no feature claimed (a
// goroutine reading frames off a connection has no feature on its stack).
var Purposes = []Category{
	{"outbox: stage, check, publish", []string{"pubsub.(*outboxImpl)", "dapr/pkg/outbox"}},
	{"new connections: dial, accept, TLS handshake", []string{"net.(*Dialer)", "net/http.(*Transport).dialConn", "crypto/tls.(*Conn).Handshake", "crypto/tls.(*Conn).serverHandshake", "crypto/tls.(*Conn).clientHandshake", "net.(*TCPListener).accept"}},
	{"service invocation hops", []string{"dapr/pkg/messaging", "dapr/pkg/channel", "onDirectMessage", ".CallLocal", ".InvokeService", "internal/sidecar.(*Invoker)"}},
	{"pub/sub delivery", []string{"dapr/pkg/runtime/subscription", "dapr/pkg/runtime/pubsub", "components-contrib/pubsub"}},
	{"state store round trips", []string{"components-contrib/state", "dapr/pkg/components/state", "(*api).GetState", "(*api).GetBulkState", "(*api).SaveState", "(*api).DeleteState", "(*api).ExecuteStateTransaction", "_Dapr_GetState_Handler", "_Dapr_SaveState_Handler", "_Dapr_GetBulkState_Handler", "_Dapr_ExecuteStateTransaction_Handler", "_Dapr_DeleteState_Handler", "dapr/go-sdk/client", "internal/sidecar.(*Store)", "jackc/pgx", "redis/go-redis"}},
	{"health probes", []string{"dapr/pkg/apphealth", "dapr/pkg/healthz", "internal/health."}},
	{"metrics and tracing", []string{"dapr/pkg/diagnostics", "go.opencensus.io", "prometheus", "opentelemetry"}},
	{"mTLS certificates", []string{"dapr/pkg/security"}},
	{"app handlers and middleware", []string{"^main.", "ordermesh/apps/"}},
	{"sidecar API: routing, middleware", []string{"dapr/pkg/api/", "dapr/pkg/middleware", "go-chi/chi", "dapr/pkg/proto"}},
	{"HTTP/1 connections: read, write", []string{"net/http.(*conn)", "net/http.(*persistConn)", "net/http.persistConnWriter", "net/http.(*Transport)", "net/http.(*response)", "net/http.(*connReader)"}},
	{"gRPC connections: HTTP/2 frames", []string{"grpc/internal/transport", "golang.org/x/net/http2", "google.golang.org/grpc.(*Server)"}},
	{"GC in the background", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"Go scheduler", []string{"runtime.mcall", "runtime.schedule", "runtime.findRunnable", "runtime.sysmon", "runtime.mstart"}},
}

// Kinds say what sort of work a sample did: the innermost frame that matches
// any kind decides, so a syscall made by TLS is network I/O and a JSON
// encoder's allocation is memory.
var Kinds = []Category{
	{"GC and allocation", []string{"runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.scanobject", "runtime.mallocgc", "runtime.gcAssist", "runtime.markroot", "runtime.greyobject", "runtime.sweepone", "runtime.bgsweep", "runtime.(*mheap)", "runtime.(*mcache)", "runtime.(*mcentral)", "runtime.newobject", "runtime.makeslice", "runtime.growslice", "runtime.wbBuf", "runtime.bulkBarrier", "runtime.findObject", "runtime.bgscavenge"}},
	{"network syscalls", []string{"syscall.", "internal/poll.", "runtime.netpoll", "internal/runtime/syscall", "runtime/internal/syscall", "runtime.epoll"}},
	{"TLS and crypto", []string{"crypto/", "golang.org/x/crypto", "filippo.io"}},
	{"JSON", []string{"encoding/json", "json-iterator", "jsoniter", "protojson", "segmentio/encoding", "goccy/go-json", "tidwall/"}},
	{"protobuf", []string{"google.golang.org/protobuf"}},
	{"gRPC and HTTP/2", []string{"google.golang.org/grpc", "golang.org/x/net/http2", "net/http.(*http2"}},
	{"HTTP/1", []string{"net/http.", "valyala/fasthttp", "go-chi/chi", "gorilla/mux", "net/textproto", "net/url."}},
	{"Redis client", []string{"redis/go-redis", "redis/rueidis"}},
	{"PostgreSQL client", []string{"jackc/pgx", "jackc/pgconn", "jackc/pgproto3"}},
	{"logging", []string{"log/slog", "sirupsen/logrus", "dapr/kit/logger"}},
	{"metrics and tracing", []string{"go.opencensus.io", "prometheus", "opentelemetry", "dapr/pkg/diagnostics"}},
	{"scheduler", []string{"runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.futex", "runtime.notewakeup", "runtime.notesleep", "runtime.usleep", "runtime.stealWork", "runtime.mcall", "runtime.goready", "runtime.ready", "runtime.wakep", "runtime.startm", "runtime.stopm", "runtime.runqgrab", "runtime.systemstack", "runtime.sysmon", "runtime.osyield", "runtime.checkTimers", "runtime.lock2", "runtime.unlock2", "runtime.nanotime", "runtime.selectgo", "runtime.chansend", "runtime.chanrecv", "runtime.gopark", "runtime.semacquire", "runtime.semrelease", "sync."}},
}

// Other is where a sample that matches no category goes.
const Other = "other"

// Cost is the CPU of one category per order, and the functions that carry
// most of it.
type Cost struct {
	Name    string    `json:"name"`
	MsOrder float64   `json:"cpu_ms_per_order"`
	Share   float64   `json:"share"`
	Top     []FuncMs  `json:"top,omitempty"`
	ByGroup []GroupMs `json:"by_group,omitempty"`
}

// FuncMs is one function's CPU per order (flat: in the function itself).
type FuncMs struct {
	Func    string  `json:"func"`
	MsOrder float64 `json:"cpu_ms_per_order"`
}

// GroupMs is a category's CPU per order in one group of processes.
type GroupMs struct {
	Group   string  `json:"group"`
	MsOrder float64 `json:"cpu_ms_per_order"`
}

// Profiled is one process's CPU profile, taken while orders were placed.
type Profiled struct {
	Process string
	Group   string // GroupApp or GroupSidecar
	Profile *profile.Profile
}

// ProfileSummary says where the profiled CPU of an order went.
type ProfileSummary struct {
	Orders    int     `json:"orders"`
	TotalMs   float64 `json:"cpu_ms_per_order"`
	ByPurpose []Cost  `json:"by_purpose"`
	ByKind    []Cost  `json:"by_kind"`
	ByProcess []Cost  `json:"by_process"` // each with its own top functions
}

// Summarize divides the profiles' CPU over the orders placed while they were
// taken.
func Summarize(profiles []Profiled, orders int) ProfileSummary {
	sum := ProfileSummary{Orders: orders}
	if orders <= 0 {
		return sum
	}
	perOrder := func(ns int64) float64 { return float64(ns) / 1e6 / float64(orders) }
	type acc struct {
		ns      int64
		funcs   map[string]int64
		byGroup map[string]int64
	}
	newAcc := func() *acc { return &acc{funcs: map[string]int64{}, byGroup: map[string]int64{}} }
	purposes, kinds, procs := map[string]*acc{}, map[string]*acc{}, map[string]*acc{}
	add := func(m map[string]*acc, key, fn, group string, ns int64) {
		a := m[key]
		if a == nil {
			a = newAcc()
			m[key] = a
		}
		a.ns += ns
		a.funcs[fn] += ns
		a.byGroup[group] += ns
	}
	var total int64
	for _, pr := range profiles {
		vi := cpuValueIndex(pr.Profile)
		if vi < 0 {
			continue
		}
		for _, s := range pr.Profile.Sample {
			ns := s.Value[vi]
			if ns == 0 {
				continue
			}
			frames := stack(s)
			leaf := Other
			if len(frames) > 0 {
				leaf = frames[0]
			}
			total += ns
			add(purposes, purposeOf(frames), leaf, pr.Group, ns)
			add(kinds, kindOf(frames), leaf, pr.Group, ns)
			add(procs, pr.Process, leaf, pr.Group, ns)
		}
	}
	sum.TotalMs = perOrder(total)
	table := func(m map[string]*acc, withGroups bool) []Cost {
		var out []Cost
		for name, a := range m {
			c := Cost{Name: name, MsOrder: perOrder(a.ns), Share: float64(a.ns) / float64(total)}
			for fn, ns := range a.funcs {
				c.Top = append(c.Top, FuncMs{Func: fn, MsOrder: perOrder(ns)})
			}
			sort.Slice(c.Top, func(i, j int) bool { return c.Top[i].MsOrder > c.Top[j].MsOrder })
			c.Top = c.Top[:min(len(c.Top), 5)]
			if withGroups {
				for g, ns := range a.byGroup {
					c.ByGroup = append(c.ByGroup, GroupMs{Group: g, MsOrder: perOrder(ns)})
				}
				sort.Slice(c.ByGroup, func(i, j int) bool { return c.ByGroup[i].Group < c.ByGroup[j].Group })
			}
			out = append(out, c)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].MsOrder > out[j].MsOrder })
		return out
	}
	sum.ByPurpose, sum.ByKind, sum.ByProcess = table(purposes, true), table(kinds, true), table(procs, false)
	return sum
}

// cpuValueIndex finds the CPU time among a profile's sample values.
func cpuValueIndex(p *profile.Profile) int {
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			return i
		}
	}
	return -1
}

// stack is a sample's function names, innermost first, inlined calls included.
func stack(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil {
				out = append(out, line.Function.Name)
			}
		}
	}
	return out
}

func purposeOf(frames []string) string {
	for _, c := range Purposes {
		for _, f := range frames {
			if matches(f, c.Match) {
				return c.Name
			}
		}
	}
	return Other
}

func kindOf(frames []string) string {
	for _, f := range frames {
		for _, c := range Kinds {
			if matches(f, c.Match) {
				return c.Name
			}
		}
	}
	return Other
}

// matches reports whether fn contains any fragment; a fragment starting
// with ^ must start fn ("^main." is a command's own code, not "domain.").
func matches(fn string, fragments []string) bool {
	for _, m := range fragments {
		if prefix, ok := strings.CutPrefix(m, "^"); ok {
			if strings.HasPrefix(fn, prefix) {
				return true
			}
		} else if strings.Contains(fn, m) {
			return true
		}
	}
	return false
}
