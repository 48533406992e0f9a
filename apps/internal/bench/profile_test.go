package bench

import (
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProfile builds a CPU profile whose samples are the given stacks
// (innermost first) with the given nanoseconds each.
func fakeProfile(stacks map[string][]string, ns map[string]int64) *profile.Profile {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}}
	funcs := map[string]*profile.Function{}
	for key, frames := range stacks {
		s := &profile.Sample{Value: []int64{1, ns[key]}}
		for _, name := range frames {
			f := funcs[name]
			if f == nil {
				f = &profile.Function{ID: uint64(len(funcs) + 1), Name: name}
				funcs[name] = f
				p.Function = append(p.Function, f)
			}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
			p.Location = append(p.Location, loc)
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

func TestSummarize(t *testing.T) {
	sidecar := fakeProfile(map[string][]string{
		// The outbox publishes inside a state transaction: outbox wins.
		"outbox": {"encoding/json.Marshal", "github.com/dapr/dapr/pkg/runtime/pubsub.(*outboxImpl).PublishInternal", "github.com/dapr/dapr/pkg/api/grpc.(*api).ExecuteStateTransaction"},
		// TLS's syscall is network I/O by kind, invocation by purpose.
		"hop": {"syscall.Syscall", "crypto/tls.(*Conn).Write", "github.com/dapr/dapr/pkg/messaging.(*directMessaging).Invoke"},
		"gc":  {"runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker"},
	}, map[string]int64{"outbox": 40e6, "hop": 30e6, "gc": 10e6})
	app := fakeProfile(map[string][]string{
		// A command's own functions are "main.", not "domain.".
		"handler": {"main.unknownLeaf", "net/http.HandlerFunc.ServeHTTP"},
		"domain":  {"example.com/domain.Leaf", "net/http.(*conn).serve"},
	}, map[string]int64{"handler": 15e6, "domain": 5e6})

	sum := Summarize([]Profiled{{Process: "orders-daprd", Group: GroupSidecar, Profile: sidecar}, {Process: "orders", Group: GroupApp, Profile: app}}, 10)

	assert.Equal(t, 10, sum.Orders)
	assert.InDelta(t, 10.0, sum.TotalMs, 1e-9) // 100 ms over 10 orders
	byName := func(cs []Cost) map[string]float64 {
		out := map[string]float64{}
		for _, c := range cs {
			out[c.Name] = c.MsOrder
		}
		return out
	}
	assert.InDeltaMapValues(t, map[string]float64{
		"outbox: stage, check, publish": 4, "service invocation hops": 3, "GC in the background": 1,
		"app handlers and middleware": 1.5, "HTTP/1 connections: read, write": 0.5,
	}, byName(sum.ByPurpose), 1e-9)
	assert.InDeltaMapValues(t, map[string]float64{
		"JSON": 4, "network syscalls": 3, "GC and allocation": 1, "HTTP/1": 2,
	}, byName(sum.ByKind), 1e-9)
	assert.InDeltaMapValues(t, map[string]float64{"orders-daprd": 8, "orders": 2}, byName(sum.ByProcess), 1e-9)

	require.Equal(t, "outbox: stage, check, publish", sum.ByPurpose[0].Name, "largest first")
	assert.InDelta(t, 0.4, sum.ByPurpose[0].Share, 1e-9)
	require.NotEmpty(t, sum.ByPurpose[0].Top)
	assert.Equal(t, "encoding/json.Marshal", sum.ByPurpose[0].Top[0].Func)
	assert.Equal(t, []GroupMs{{Group: GroupSidecar, MsOrder: 4}}, sum.ByPurpose[0].ByGroup)
}

func TestSummarizeWithoutOrdersOrCPU(t *testing.T) {
	p := fakeProfile(map[string][]string{"x": {"main.f"}}, map[string]int64{"x": 1e6})
	assert.Empty(t, Summarize([]Profiled{{Process: "a", Profile: p}}, 0).ByKind)

	noCPU := &profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}}
	sum := Summarize([]Profiled{{Process: "a", Profile: noCPU}}, 5)
	assert.Zero(t, sum.TotalMs)
	assert.Empty(t, sum.ByKind)
}
