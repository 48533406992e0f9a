//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// TestConsoleInBrowser drives the console in headless Chromium, as an
// operator sees it: it loads without a JavaScript error, lists the six apps,
// shows the edge gateway → orders once an order went through, draws that
// order's trace with the apps' log lines, and shows users' breaker open (and
// users marked) while users is stopped, and closed again once it is back. It saves screenshots of the console
// and of the trace into the test's folder, and into $CONSOLE_SCREENSHOT_DIR
// when set (the README's picture is made so).
func TestConsoleInBrowser(t *testing.T) {
	// resiliency.yaml's durations divided by 5: users' breaker stays open
	// 12 s instead of 60, long enough to see, short enough to see it close.
	o := startObserved(t, harness.Options{EditResource: harness.ScaleResiliency(5)})
	b := newBrowser(t)
	id := func(name string) string { return o.App(name).ID }

	b.run(t, chromedp.Navigate(o.ConsoleURL))
	b.waitFor(t, "the six apps are listed", `document.querySelectorAll("#apps tr[data-app]").length === 6`)
	for _, name := range harness.Apps {
		b.waitFor(t, name+" is listed, healthy", fmt.Sprintf(`document.querySelector('#apps tr[data-app=%q]')?.dataset.healthy === "true"`, id(name)))
	}
	b.waitFor(t, "every Prometheus target is up", `document.querySelectorAll("[data-target]").length === 12 && document.querySelectorAll('[data-target]:not([data-health="up"])').length === 0`)

	u := createUser(t, o.GatewayURL())
	p := createProduct(t, o.GatewayURL(), 990, 1000)
	res := o.api(t, http.MethodPost, "/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	traceID := res.Header.Get("X-Trace-Id")
	require.NotEmpty(t, traceID)
	var ord order
	res.JSON(t, &ord)
	res = o.api(t, http.MethodPost, "/api/payments", map[string]any{"order_id": ord.ID, "amount_cents": ord.TotalCents}, "Idempotency-Key", "pay-"+ord.ID)
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)

	// The page refreshes itself: no reload here.
	b.waitFor(t, "the edge gateway → orders", fmt.Sprintf(`!!document.querySelector('g.edge[data-from=%q][data-to=%q]')`, id("gateway"), id("orders")))
	b.waitFor(t, "the edge orders → users", fmt.Sprintf(`!!document.querySelector('g.edge[data-from=%q][data-to=%q]')`, id("orders"), id("users")))
	b.waitFor(t, "the event reaching notifications", fmt.Sprintf(`!!document.querySelector('g.edge[data-from="topic:orders"][data-to=%q]')`, id("notifications")))
	b.waitFor(t, "payment_completed reaching orders", fmt.Sprintf(`!!document.querySelector('g.edge[data-from="topic:payments"][data-to=%q]')`, id("orders")))
	// The event reaches notifications a second after the order (the outbox):
	// its span joins the trace then.
	b.waitFor(t, "the order in the latest orders, through to notifications",
		fmt.Sprintf(`(document.querySelector('#orders tr[data-trace=%q]')?.textContent || "").includes(%q)`, traceID, id("notifications")))
	b.screenshot(t, "console.png")

	// Its trace, drawn, with the apps' log lines for it.
	b.run(t, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#orders tr[data-trace=%q] a`, traceID))))
	b.waitFor(t, "the trace page", fmt.Sprintf(`document.getElementById("trace-id")?.textContent === %q`, traceID))
	services := evaluate[[]string](t, b, `[...new Set([...document.querySelectorAll("#timeline g.span")].map(g => g.dataset.service))].sort()`)
	for _, name := range []string{"gateway", "orders", "users", "products", "notifications"} {
		assert.Contains(t, services, id(name), "the timeline has spans of %s", name)
	}
	bars := evaluate[int](t, b, `[...document.querySelectorAll("#timeline g.span rect")].filter(r => r.width.baseVal.value > 0).length`)
	assert.GreaterOrEqual(t, bars, 5, "one bar per span")
	logApps := evaluate[[]string](t, b, `[...new Set([...document.querySelectorAll("#logs tr[data-app]")].map(r => r.dataset.app))].sort()`)
	for _, name := range []string{"gateway", "orders", "users", "products", "notifications"} {
		assert.Contains(t, logApps, id(name), "the trace page shows %s's log lines", name)
	}
	b.screenshot(t, "trace.png")

	// users goes down: orders' breaker for it opens after 3 failures, and
	// the console shows it, and users marked, while it stays down.
	o.App("users").StopApp()
	for i := range 4 {
		res := o.api(t, http.MethodPost, "/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
		require.Equal(t, http.StatusServiceUnavailable, res.Status, "order %d with users down: %s", i+1, res.Body)
	}
	b.run(t, chromedp.Navigate(o.ConsoleURL))
	b.waitFor(t, "orders' breaker for users open", fmt.Sprintf(`document.querySelector('#breakers tr[data-breaker=%q]')?.dataset.state === "open"`, id("orders")+"→"+id("users")))
	b.waitFor(t, "users marked unhealthy", fmt.Sprintf(`document.querySelector('#apps tr[data-app=%q]')?.dataset.healthy === "false"`, id("users")))
	b.waitFor(t, "the problem listed", `[...document.querySelectorAll("#problems li")].some(li => li.textContent.includes("is open"))`)
	b.screenshot(t, "breaker-open.png")

	// users comes back: once the breaker's probes succeed it closes, and the
	// console shows it closed and users healthy again.
	o.App("users").StartApp()
	o.App("users").WaitReady()
	eventually(t, 60*time.Second, func() (bool, string) {
		res := o.api(t, http.MethodPost, "/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
		if res.Status != http.StatusCreated && res.Status != http.StatusServiceUnavailable {
			t.Fatalf("order while users recovers: %d %s", res.Status, res.Body)
		}
		state := evaluate[string](t, b, fmt.Sprintf(`document.querySelector('#breakers tr[data-breaker=%q]')?.dataset.state || ""`, id("orders")+"→"+id("users")))
		return state == "closed", "orders' breaker for users: " + state
	})
	b.waitFor(t, "users healthy again", fmt.Sprintf(`document.querySelector('#apps tr[data-app=%q]')?.dataset.healthy === "true"`, id("users")))

	b.noErrors(t)
}

// browser is one headless Chromium tab, with every JavaScript exception and
// console error its pages reported.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	chromium := toolPath(t, "ORDERMESH_CHROMIUM", "chromium", "apt-get install chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-gpu", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{ctx: ctx}
	messages := chromedp.Console(ctx) // starts the browser
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			// Exceptions and console.error calls; a browser log entry (Source
			// set) is the browser's, not the page's script.
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source == "") {
				b.mu.Lock()
				b.errors = append(b.errors, m.String())
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); cancelAlloc(); <-done })
	return b
}

func (b *browser) run(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...))
}

// evaluate runs a JavaScript expression on the page and returns its value.
func evaluate[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// waitFor polls a JavaScript condition on the page until it holds.
func (b *browser) waitFor(t *testing.T, what, cond string) {
	t.Helper()
	eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err != nil {
			return false, what + ": " + err.Error()
		}
		return ok, what
	})
}

// screenshot saves the visible page as a PNG.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	dirs := []string{t.TempDir()}
	if d := os.Getenv("CONSOLE_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		require.NoError(t, os.WriteFile(filepath.Join(d, name), png, 0o644))
	}
	t.Logf("screenshot %s: %d bytes", name, len(png))
}

// noErrors checks that the pages reported no JavaScript error at all.
func (b *browser) noErrors(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Empty(t, b.errors, "JavaScript errors on the console")
}
