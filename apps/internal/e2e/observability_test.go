//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// TestOneOrderOneTrace places one order and follows it: the gateway answers
// with a trace id; Jaeger holds that one trace with spans from the gateway's,
// orders', users' and products' sidecars and notifications' sidecar
// delivering order_created (the trace crossed the outbox and the broker);
// every app on the way logged lines carrying the trace id; Prometheus scrapes
// every sidecar and app; and each app's /metrics counted its part.
func TestOneOrderOneTrace(t *testing.T) {
	o := startObserved(t, harness.Options{})

	u := createUser(t, o.GatewayURL())
	p := createProduct(t, o.GatewayURL(), 1250, 10)
	before := map[string]uint64{}
	for _, name := range harness.Apps {
		before[name] = served(requestCounts(t, o.App(name)))
	}

	res := o.api(t, http.MethodPost, "/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 2})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	var ord order
	res.JSON(t, &ord)
	traceID := res.Header.Get("X-Trace-Id")
	require.Regexp(t, `^[0-9a-f]{32}$`, traceID, "the gateway names the order's trace")
	// Paid, so that payments has its part of the order too.
	res = o.api(t, http.MethodPost, "/api/payments", map[string]any{"order_id": ord.ID, "amount_cents": ord.TotalCents}, "Idempotency-Key", "pay-"+ord.ID)
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	payTrace := res.Header.Get("X-Trace-Id")
	require.NotEqual(t, traceID, payTrace, "every public request starts its own trace")

	ids := map[string]string{} // app id -> plain name
	for _, name := range harness.Apps {
		ids[o.App(name).ID] = name
	}
	var tr jaegerTrace
	eventually(t, 30*time.Second, func() (bool, string) {
		var found bool
		tr, found = o.getTrace(t, traceID)
		if !found {
			return false, "Jaeger has no trace " + traceID
		}
		seen := map[string]bool{}
		for id := range tr.services() {
			seen[ids[id]] = true
		}
		for _, name := range []string{"gateway", "orders", "users", "products", "notifications"} {
			if !seen[name] {
				return false, fmt.Sprintf("no span from %s yet: %v", name, tr.services())
			}
		}
		return true, ""
	})
	t.Logf("trace %s: %d spans: %v", traceID, len(tr.Spans), tr.services())
	// notifications' spans are its sidecar delivering the event to it.
	deliveries := tr.services()[o.App("notifications").ID]
	assert.True(t, slices.ContainsFunc(deliveries, func(op string) bool { return strings.Contains(op, "orders") }),
		"notifications' sidecar delivers topic orders within the order's trace: %v", deliveries)
	// Every span belongs to this trace, and is a child of a span the trace
	// holds, except the roots: the gateway sidecar's (its parent is the
	// gateway's own span, which no one exports).
	spanIDs := map[string]bool{}
	for _, s := range tr.Spans {
		spanIDs[s.SpanID] = true
	}
	for _, s := range tr.Spans {
		svc := tr.Processes[s.ProcessID].ServiceName
		if len(s.References) == 0 || !spanIDs[s.References[0].SpanID] {
			assert.Equal(t, o.App("gateway").ID, svc, "span %s %q has no parent in the trace", svc, s.OperationName)
		}
	}

	// Every app on the way wrote its lines with the trace id.
	for _, name := range []string{"gateway", "orders", "users", "products", "notifications"} {
		eventually(t, 10*time.Second, func() (bool, string) {
			log := o.App(name).AppProc().Log()
			return strings.Contains(log, `"trace_id":"`+traceID+`"`), name + " logged no line with the trace id"
		})
	}
	for _, name := range harness.Apps {
		for _, line := range strings.Split(o.App(name).AppProc().Log(), "\n") {
			if strings.Contains(line, `"msg":"request"`) {
				assert.Contains(t, line, `"trace_id":"`, "%s: a request line without a trace id", name)
			}
		}
	}

	// Each app counted its part in /metrics.
	for _, name := range harness.Apps {
		counts := requestCounts(t, o.App(name))
		assert.Greater(t, served(counts), before[name], "%s counted no request for the order: %v", name, counts)
	}
	assert.EqualValues(t, 1, requestCounts(t, o.App("gateway"))["POST /api/orders 201"])
	assert.EqualValues(t, 1, requestCounts(t, o.App("orders"))["POST /orders 201"])
	// And the domain's own counters.
	assert.EqualValues(t, 1, counterValue(t, o.App("orders"), "ordermesh_orders_placed_total", nil))
	assert.EqualValues(t, 1, counterValue(t, o.App("payments"), "ordermesh_payments_total", map[string]string{"result": "paid"}))
	eventually(t, 10*time.Second, func() (bool, string) {
		n := counterValue(t, o.App("notifications"), "ordermesh_notification_events_total", map[string]string{"kind": "order", "outcome": "SUCCESS"})
		return n >= 1, fmt.Sprintf("notifications handled %v order events", n)
	})
	// A refusal is counted by its reason where it is decided.
	res = o.api(t, http.MethodPost, "/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1000})
	require.Equal(t, http.StatusConflict, res.Status, "%s", res.Body)
	assert.EqualValues(t, 1, counterValue(t, o.App("orders"), "http_server_errors_total",
		map[string]string{"route": "/orders", "code": "insufficient_stock"}))

	// Prometheus scrapes every sidecar and every app.
	want := 2 * len(harness.Apps)
	eventually(t, 30*time.Second, func() (bool, string) {
		targets := o.promTargets(t)
		up := 0
		for _, health := range targets {
			if strings.HasPrefix(health, "up") {
				up++
			}
		}
		return len(targets) == want && up == want, fmt.Sprintf("%d of %d targets up: %v", up, want, targets)
	})
	if t.Failed() {
		t.Logf("jaeger log:\n%s", tail(o, "jaeger"))
	}
}

func tail(o *observed, name string) string {
	for _, p := range o.Procs() {
		if p.Name == name {
			return p.Tail(40)
		}
	}
	return "(no " + name + ")"
}
