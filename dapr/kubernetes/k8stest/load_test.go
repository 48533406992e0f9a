//go:build k8s

package k8stest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shop is the users and products a load orders from, with each product's
// stock when it was created.
type shop struct {
	users    []user
	products []product
}

func newShop(t *testing.T, gw *gatewayClient, users, products int, stock int64) shop {
	t.Helper()
	var s shop
	for range users {
		s.users = append(s.users, gw.createUser(t))
	}
	for range products {
		s.products = append(s.products, gw.createProduct(t, 250, stock))
	}
	return s
}

// answer is one request of a load: when it started and how it ended.
type answer struct {
	At     time.Time
	Kind   string // "order" or "payment"
	Status int    // 0: no answer
	Err    string
}

// failed is what a client counts as a failure: no answer, or a 5xx.
func (a answer) failed() bool { return a.Status == 0 || a.Status >= 500 }

// load places orders at a fixed rate, and pays each created order with an
// idempotency key of its own (a payment without an answer is retried with
// the same key, which is what the key is for).
type load struct {
	gw    *gatewayClient
	shop  shop
	rate  int
	limit int // requests in flight at most

	mu      sync.Mutex
	answers []answer
	created []order
}

func (l *load) record(a answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, a)
}

// run sends orders until ctx ends, then waits for the requests in flight.
func (l *load) run(ctx context.Context) {
	tick := time.NewTicker(time.Second / time.Duration(l.rate))
	defer tick.Stop()
	slots := make(chan struct{}, l.limit)
	var wg sync.WaitGroup
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			l.record(answer{At: time.Now(), Kind: "order", Err: "not sent: too many requests in flight"})
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			l.orderAndPay()
		})
	}
}

func (l *load) orderAndPay() {
	u := l.shop.users[rand.IntN(len(l.shop.users))]
	p := l.shop.products[rand.IntN(len(l.shop.products))]
	start := time.Now()
	r := l.gw.call(context.Background(), http.MethodPost, "/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
	l.record(answer{At: start, Kind: "order", Status: r.Status, Err: errText(r)})
	if r.Status != http.StatusCreated {
		return
	}
	var o order
	if json.Unmarshal(r.Body, &o) != nil {
		return
	}
	l.mu.Lock()
	l.created = append(l.created, o)
	l.mu.Unlock()
	key := "k8s-pay-" + o.ID
	for attempt := range 4 {
		start := time.Now()
		r := l.gw.call(context.Background(), http.MethodPost, "/api/payments", map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}, "Idempotency-Key", key)
		l.record(answer{At: start, Kind: "payment", Status: r.Status, Err: errText(r)})
		if !(r.Status == 0 || r.Status >= 500 || r.Status == http.StatusConflict) || attempt == 3 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func errText(r response) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	if r.Status >= 400 {
		return strings.TrimSpace(string(r.Body))
	}
	return ""
}

// window counts the answers to requests started in [from, to).
type window struct {
	Name     string
	From, To time.Time
}

// report logs, per window, the answers by status, and returns the number of
// failed answers in each.
func (l *load) report(t *testing.T, windows ...window) map[string]int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	failed := map[string]int{}
	for _, w := range windows {
		codes := map[string]int{}
		examples := map[string]string{}
		for _, a := range l.answers {
			if a.At.Before(w.From) || !a.At.Before(w.To) {
				continue
			}
			k := fmt.Sprintf("%s %d", a.Kind, a.Status)
			if a.Status == 0 {
				k = a.Kind + " no answer"
			}
			codes[k]++
			if a.failed() {
				failed[w.Name]++
				if examples[k] == "" {
					examples[k] = a.Err
				}
			}
		}
		keys := make([]string, 0, len(codes))
		for k := range codes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %d", k, codes[k]))
		}
		t.Logf("load, %s (%s): %s; failed: %d", w.Name, w.To.Sub(w.From).Round(time.Second), strings.Join(parts, ", "), failed[w.Name])
		for k, e := range examples {
			t.Logf("  e.g. %s: %.300s", k, e)
		}
	}
	return failed
}

// storedOrders reads every order in orders' PostgreSQL database (through
// psql in the postgres pod): what exists, whatever the clients were told.
func storedOrders(t *testing.T, c *cluster) map[string]order {
	t.Helper()
	pg := c.appPods("postgres")
	require.Len(t, pg, 1, "postgres pod")
	out := c.exec(pg[0].Name, "postgres", "psql", "-U", "ordermesh", "-d", "ordermesh", "-At", "-c",
		`SELECT convert_from(value, 'UTF8') FROM orders_state WHERE key LIKE 'orders||%'`)
	orders := map[string]order{}
	for _, line := range strings.Split(out, "\n") {
		var o order
		if json.Unmarshal([]byte(line), &o) == nil && o.ID != "" && o.ProductID != "" {
			orders[o.ID] = o
		}
	}
	return orders
}

// storedPayments counts payments per order in payments' Redis keys.
func storedPayments(t *testing.T, c *cluster) map[string]int {
	t.Helper()
	rd := c.appPods("redis")
	require.Len(t, rd, 1, "redis pod")
	out := c.exec(rd[0].Name, "redis", "redis-cli", "--no-auth-warning", "-a", c.secret("redis", "password"), "EVAL",
		`local out = {} for i, k in ipairs(redis.call('KEYS', ARGV[1])) do out[i] = redis.call('HGET', k, 'data') end return out`,
		"0", "payments||payment/*")
	paid := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		var p payment
		if json.Unmarshal([]byte(line), &p) == nil && p.OrderID != "" {
			paid[p.OrderID]++
		}
	}
	return paid
}

// checkInvariants checks, once the system has settled (polling: events
// arrive after the answers), what no fault may break:
//   - every order answered 201 is stored;
//   - every stored order of the shop has exactly one order_created
//     notification, and there is none for an order that is not stored;
//   - no order is paid twice;
//   - stock is conserved: initial = remaining + quantities of stored orders.
func checkInvariants(t *testing.T, c *cluster, gw *gatewayClient, s shop, initialStock int64, created []order) {
	t.Helper()
	inShop := map[string]bool{}
	for _, p := range s.products {
		inShop[p.ID] = true
	}
	var last []string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var problems []string
		stored := storedOrders(t, c)
		mine := map[string]order{}
		for id, o := range stored {
			if inShop[o.ProductID] {
				mine[id] = o
			}
		}
		for _, o := range created {
			if _, ok := mine[o.ID]; !ok {
				problems = append(problems, "order "+o.ID+" was answered 201 but is not stored")
			}
		}
		notified := map[string]int{}
		for _, u := range s.users {
			for _, n := range gw.notifications(t, u.ID) {
				if n.Type == "order_created" {
					notified[n.OrderID]++
				}
			}
		}
		for id := range mine {
			if notified[id] != 1 {
				problems = append(problems, fmt.Sprintf("order %s has %d order_created notifications", id, notified[id]))
			}
		}
		for id, n := range notified {
			if _, ok := mine[id]; !ok {
				problems = append(problems, fmt.Sprintf("%d order_created notifications for order %s, which is not stored", n, id))
			}
		}
		paid := storedPayments(t, c)
		paidOrders := 0
		for id := range mine {
			if paid[id] > 0 {
				paidOrders++
			}
			if paid[id] > 1 {
				problems = append(problems, fmt.Sprintf("order %s is paid %d times", id, paid[id]))
			}
		}
		for _, p := range s.products {
			var cur product
			gw.do(t, http.MethodGet, "/api/products/"+p.ID, nil).JSON(t, &cur)
			var ordered int64
			for _, o := range mine {
				if o.ProductID == p.ID {
					ordered += o.Quantity
				}
			}
			if cur.Stock+ordered != initialStock {
				problems = append(problems, fmt.Sprintf("product %s: stock %d + ordered %d != initial %d", p.ID, cur.Stock, ordered, initialStock))
			}
		}
		if len(problems) == 0 {
			t.Logf("invariants hold: %d orders answered 201, %d stored, each with one order_created notification; %d paid, none twice; stock conserved on %d products",
				len(created), len(mine), paidOrders, len(s.products))
			return
		}
		last = problems
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(3 * time.Second)
	}
	for i, p := range last {
		if i == 20 {
			t.Errorf("... and %d more", len(last)-20)
			break
		}
		t.Error(p)
	}
	assert.Empty(t, last, "invariants")
}
