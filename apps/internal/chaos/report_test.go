//go:build chaos

package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// report is one broker's run.
type report struct {
	Broker     string
	Began      time.Time
	LoadTime   time.Duration
	Settle     time.Duration
	Faults     []faultResult
	Requests   []request
	Idle       invariant
	Invariants []invariant
}

var brokerNames = map[string]string{"redis": "Redis Streams", "rabbitmq": "RabbitMQ"}

// markdown renders the report: the faults with the answers during each, then
// the invariants with their figures.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#### %s (%s, load %s, %d requests: %s)\n\n", brokerNames[r.Broker], r.Began.UTC().Format("2006-01-02 15:04 UTC"),
		r.LoadTime.Round(time.Second), len(r.Requests), counts(r.Requests, true))
	b.WriteString("| fault | requests | answers during the fault (until recovered) | recovered after undone |\n| --- | --- | --- | --- |\n")
	for _, f := range r.Faults {
		end := f.Recovered
		rec := fmt.Sprintf("%.1f s", f.Recovered.Sub(f.Restored).Seconds())
		if f.Err != nil {
			end, rec = f.Restored.Add(2*time.Minute), "**not recovered**: "+f.Err.Error()
		}
		in := between(r.Requests, f.Start, end)
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", f.Name, len(in), counts(in, false), rec)
	}
	b.WriteString("\n| invariant | figure | holds |\n| --- | --- | --- |\n")
	for _, inv := range r.Invariants {
		holds := "yes"
		if !inv.Holds {
			holds = "**no**: " + strings.Join(inv.Detail, "; ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", inv.Name, inv.Figure, holds)
	}
	fmt.Fprintf(&b, "\nSettled (every invariant read back) %.1f s after the load stopped.\n", r.Settle.Seconds())
	return b.String()
}

func between(reqs []request, from, to time.Time) []request {
	var out []request
	for _, q := range reqs {
		if !q.At.Before(from) && q.At.Before(to) {
			out = append(out, q)
		}
	}
	return out
}

// counts renders "201×12 503×3 none×1", per status label (or per operation).
func counts(reqs []request, byOp bool) string {
	m := map[string]int{}
	for _, q := range reqs {
		k := q.Label
		if byOp {
			k = q.Op
		}
		m[k]++
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, " ")
}
