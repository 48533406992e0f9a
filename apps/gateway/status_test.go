package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cbSeries is one dapr_resiliency_cb_state line as daprd 1.18.2 exports it.
func cbSeries(name, status, target string, value int) string {
	return `dapr_resiliency_cb_state{app_id="orders-1",flow_direction="outbound",name="` + name +
		`",namespace="",policy="circuitbreaker",status="` + status + `",target="` + target + `"} ` + strconv.Itoa(value)
}

// cbTarget is the four series of one target, the current state set to 1.
func cbTarget(name, target, current string) []string {
	var out []string
	for _, s := range []string{"closed", "half-open", "open", "unknown"} {
		v := 0
		if s == current {
			v = 1
		}
		out = append(out, cbSeries(name, s, target, v))
	}
	return out
}

func TestParseBreakerStates(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  map[string]string
	}{
		{
			name: "one series per state, the current one 1",
			lines: append(append([]string{
				"# HELP dapr_resiliency_cb_state A resiliency policy's current CircuitBreakerState state. 0 is closed, 1 is half-open, 2 is open, and -1 is unknown.",
				"# TYPE dapr_resiliency_cb_state gauge",
			}, cbTarget("ordermesh", "app_users-1", "open")...), cbTarget("ordermesh", "app_products-1", "closed")...),
			want: map[string]string{"users-1": "open", "products-1": "closed"},
		},
		{
			name:  "half-open",
			lines: cbTarget("ordermesh", "app_users-1", "half-open"),
			want:  map[string]string{"users-1": "half-open"},
		},
		{
			name:  "unknown is no state",
			lines: cbTarget("ordermesh", "app_users-1", "unknown"),
			want:  map[string]string{},
		},
		{
			name:  "two resources for one target: the worst wins",
			lines: append(cbTarget("a", "app_users-1", "open"), cbTarget("b", "app_users-1", "half-open")...),
			want:  map[string]string{"users-1": "open"},
		},
		{
			name:  "two resources for one target: the worst wins, whatever comes first",
			lines: append(cbTarget("a", "app_users-1", "half-open"), cbTarget("b", "app_users-1", "open")...),
			want:  map[string]string{"users-1": "open"},
		},
		{
			name: "components, other metrics and inbound series are not apps' breakers",
			lines: append([]string{
				`dapr_resiliency_cb_state{app_id="orders-1",flow_direction="outbound",name="ordermesh",namespace="",policy="circuitbreaker",status="open",target="statestore_orderstore"} 1`,
				`dapr_resiliency_cb_state{app_id="orders-1",flow_direction="inbound",name="ordermesh",namespace="",policy="circuitbreaker",status="open",target="app_payments-1"} 1`,
				`dapr_resiliency_count{app_id="orders-1",flow_direction="outbound",name="ordermesh",namespace="",policy="circuitbreaker",status="open",target="app_users-1"} 7`,
			}, cbTarget("ordermesh", "app_users-1", "closed")...),
			want: map[string]string{"users-1": "closed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBreakerStates(strings.NewReader(strings.Join(tc.lines, "\n") + "\n"))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
