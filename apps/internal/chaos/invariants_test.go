//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// invariant is one promise, checked with its figure.
type invariant struct {
	Name   string
	Figure string
	Holds  bool
	Detail []string // what breaks it, a few examples
	all    []string // everything that breaks it
}

// truth is what the stores hold at the end, read from them directly
// (PostgreSQL for orders, Redis for payments) or through the API.
type truth struct {
	orders        map[string]storedOrder
	payments      map[string]storedPayment
	notes         []notification
	deadLetters   []json.RawMessage
	stock         map[string]int64
	orderReadErrs []string
}

type storedOrder struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	ProductID string    `json:"product_id"`
	Quantity  int64     `json:"quantity"`
	Status    string    `json:"status"`
	PaymentID string    `json:"payment_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type storedPayment struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
}

// readTruth reads the stores.
func readTruth(ctx context.Context, sys *harness.System, pg *harness.Server, ld *load) (*truth, error) {
	tr := &truth{orders: map[string]storedOrder{}, payments: map[string]storedPayment{}, stock: map[string]int64{}}
	rows, err := pg.Query(fmt.Sprintf(`SELECT convert_from(value, 'UTF8') FROM orders_state WHERE key LIKE '%s||order/%%'`, sys.App("orders").ID))
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(rows), "\n") {
		if line == "" {
			continue
		}
		var o storedOrder
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			return nil, fmt.Errorf("stored order %q: %w", line, err)
		}
		tr.orders[o.ID] = o
	}
	// Every payment record of payments' store: a Redis hash per key, the
	// value in its "data" field.
	const script = `local out = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do out[#out + 1] = redis.call('HGET', k, 'data') end return cjson.encode(out)`
	reply, err := sys.RedisDo("EVAL", script, "0", sys.App("payments").ID+"||payment/*")
	if err != nil {
		return nil, fmt.Errorf("read payments: %w", err)
	}
	var raw []string
	if reply != "{}" { // cjson encodes an empty table as an object
		if err := json.Unmarshal([]byte(reply), &raw); err != nil {
			return nil, fmt.Errorf("read payments: %w: %.200s", err, reply)
		}
	}
	for _, r := range raw {
		var p storedPayment
		if err := json.Unmarshal([]byte(r), &p); err != nil {
			return nil, fmt.Errorf("stored payment %q: %w", r, err)
		}
		tr.payments[p.ID] = p
	}
	ld.l.mu.Lock()
	users := append([]string{ld.probeU}, ld.l.users...)
	products := keys(ld.l.products, "")
	ld.l.mu.Unlock()
	for _, u := range users {
		notes, err := ld.notifications(ctx, u)
		if err != nil {
			return nil, err
		}
		tr.notes = append(tr.notes, notes...)
	}
	if tr.deadLetters, err = listAll[json.RawMessage](ctx, ld.c, "/api/notifications/dead-letters?limit=100"); err != nil {
		return nil, err
	}
	for _, id := range products {
		a := ld.c.do(ctx, http.MethodGet, "/api/products/"+id, nil)
		var p struct{ Stock int64 }
		if a.Status != http.StatusOK || a.decode(&p) != nil {
			return nil, fmt.Errorf("product %s: %d %v %s", id, a.Status, a.Err, a.Body)
		}
		tr.stock[id] = p.Stock
	}
	return tr, nil
}

// check compares the ledger with the truth.
func check(l *ledger, tr *truth) []invariant {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []invariant
	add := func(name, figure string, detail []string) {
		out = append(out, invariant{Name: name, Figure: figure, Holds: len(detail) == 0, Detail: firstN(detail, 5), all: detail})
	}

	// A soak that placed, paid or shipped nothing proves nothing.
	var idle []string
	paid201 := 0
	for _, p := range l.payments {
		paid201 += p.Created
	}
	for what, n := range map[string]int{"orders answered 201": len(l.orders), "payments answered 201": paid201, "ships answered 200": len(l.shipped)} {
		if n == 0 {
			idle = append(idle, "no "+what)
		}
	}
	bad := 0
	for _, q := range l.requests {
		if q.Label == "400" || q.Label == "404" {
			bad++
		}
	}
	if bad > 0 {
		idle = append(idle, fmt.Sprintf("%d valid requests answered 400 or 404", bad))
	}
	add("the load placed, paid and shipped orders, every request valid (no 400, no 404)", fmt.Sprintf("%d orders, %d payments, %d ships answered with success", len(l.orders), paid201, len(l.shipped)), idle)

	// Orders answered 201 are stored; the others stored are few and whole.
	var missing []string
	for id := range l.orders {
		if _, ok := tr.orders[id]; !ok {
			missing = append(missing, "order "+id+" answered 201, not stored")
		}
	}
	add("every order answered 201 is stored", fmt.Sprintf("%d of %d stored", len(l.orders)-len(missing), len(l.orders)), missing)

	created := map[string]int{}
	shippedNotes := map[string]int{}
	var orphans []string
	for _, n := range tr.notes {
		if _, ok := tr.orders[n.OrderID]; !ok {
			orphans = append(orphans, fmt.Sprintf("%s notification %s for order %s, which is not stored", n.Type, n.ID, n.OrderID))
		}
		switch n.Type {
		case "order_created":
			created[n.OrderID]++
		case "order_shipped":
			shippedNotes[n.OrderID]++
		}
	}
	var unseen, half []string
	for id := range tr.orders {
		if _, ok := l.orders[id]; !ok {
			unseen = append(unseen, id)
			if created[id] != 1 {
				half = append(half, fmt.Sprintf("order %s stored without a 201 answer and with %d emails", id, created[id]))
			}
		}
	}
	if len(unseen) > l.orderUnanswered {
		half = append(half, fmt.Sprintf("%d orders stored without a 201 answer, but only %d requests went unanswered", len(unseen), l.orderUnanswered))
	}
	add("an order never answered is absent or complete (stored with its event)",
		fmt.Sprintf("%d order requests unanswered or 5xx; %d of them stored, each with its event", l.orderUnanswered, len(unseen)), half)

	var badCreated, badShipped []string
	shippedStored := 0
	for id, o := range tr.orders {
		if created[id] != 1 {
			badCreated = append(badCreated, fmt.Sprintf("order %s (placed %s): %d order_created notifications", id, o.CreatedAt.UTC().Format("15:04:05.000"), created[id]))
		}
		if o.Status == "shipped" {
			shippedStored++
			if shippedNotes[id] != 1 {
				badShipped = append(badShipped, fmt.Sprintf("shipped order %s (placed %s): %d order_shipped notifications", id, o.CreatedAt.UTC().Format("15:04:05.000"), shippedNotes[id]))
			}
		} else if shippedNotes[id] > 0 {
			badShipped = append(badShipped, fmt.Sprintf("order %s is %s but has an order_shipped notification", id, o.Status))
		}
	}
	for id := range l.shipped {
		if tr.orders[id].Status != "shipped" {
			badShipped = append(badShipped, fmt.Sprintf("order %s answered 200 to ship, stored as %q", id, tr.orders[id].Status))
		}
	}
	add("every stored order has exactly one order_created notification", fmt.Sprintf("%d orders, %d emails", len(tr.orders), sum(created)), badCreated)
	add("every shipped order has exactly one order_shipped notification", fmt.Sprintf("%d shipped (%d answered 200), %d SMS", shippedStored, len(l.shipped), sum(shippedNotes)), badShipped)
	add("no notification without its order", fmt.Sprintf("%d notifications", len(tr.notes)), orphans)

	var dl []string
	for _, d := range tr.deadLetters {
		dl = append(dl, string(d))
	}
	add("dead letters hold no valid event (none is injected)", fmt.Sprintf("%d dead letters", len(tr.deadLetters)), dl)

	// Payments.
	perOrder := map[string][]string{}
	for _, p := range tr.payments {
		perOrder[p.OrderID] = append(perOrder[p.OrderID], p.ID)
	}
	var twice []string
	for oid, ids := range perOrder {
		if len(ids) > 1 {
			twice = append(twice, fmt.Sprintf("order %s paid %d times: %v", oid, len(ids), ids))
		}
	}
	add("no order is paid twice", fmt.Sprintf("%d payments stored for %d orders", len(tr.payments), len(perOrder)), twice)

	var badKeys []string
	answered, created201 := 0, 0
	for _, p := range l.payments {
		if len(p.IDs) > 1 {
			badKeys = append(badKeys, fmt.Sprintf("key %s answered with %d payment ids", p.Key, len(p.IDs)))
		}
		if p.Created > 1 {
			badKeys = append(badKeys, fmt.Sprintf("key %s answered 201 %d times", p.Key, p.Created))
		}
		created201 += p.Created
		for id, n := range p.IDs {
			answered += n
			sp, ok := tr.payments[id]
			if !ok {
				badKeys = append(badKeys, fmt.Sprintf("payment %s answered for key %s, not stored", id, p.Key))
			} else if sp.OrderID != p.OrderID {
				badKeys = append(badKeys, fmt.Sprintf("payment %s stored for order %s, paid for %s", id, sp.OrderID, p.OrderID))
			}
		}
	}
	add("every payment answered 201/200 is stored once, one payment per key",
		fmt.Sprintf("%d keys, %d answers 201/200 (%d 201), %d payments stored", len(l.payments), answered, created201, len(tr.payments)), badKeys)

	var unpaid []string
	for _, p := range tr.payments {
		o, ok := tr.orders[p.OrderID]
		switch {
		case !ok:
			unpaid = append(unpaid, fmt.Sprintf("payment %s of order %s, which is not stored", p.ID, p.OrderID))
		case o.PaymentID != p.ID || (o.Status != "paid" && o.Status != "shipped"):
			unpaid = append(unpaid, fmt.Sprintf("payment %s completed, order %s is %q with payment %q", p.ID, o.ID, o.Status, o.PaymentID))
		}
	}
	add("every stored payment's order is marked paid", fmt.Sprintf("%d payments", len(tr.payments)), unpaid)

	// Stock.
	held := map[string]int64{}
	for _, o := range tr.orders {
		held[o.ProductID] += o.Quantity
	}
	var stock []string
	var initial, remaining, ordered int64
	for id, init := range l.products {
		initial += init
		remaining += tr.stock[id]
		ordered += held[id]
		if init != tr.stock[id]+held[id] {
			stock = append(stock, fmt.Sprintf("product %s: initial %d, remaining %d + ordered %d = %d", id, init, tr.stock[id], held[id], tr.stock[id]+held[id]))
		}
	}
	add("stock is conserved per product (initial = remaining + stored orders)",
		fmt.Sprintf("%d products: %d = %d + %d", len(l.products), initial, remaining, ordered), stock)
	return out
}

func allHold(invs []invariant) bool {
	for _, inv := range invs {
		if !inv.Holds {
			return false
		}
	}
	return true
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func firstN(s []string, n int) []string {
	sort.Strings(s)
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}
