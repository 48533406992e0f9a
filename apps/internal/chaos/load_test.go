//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"
)

// request is one request of the load, as the report counts it.
type request struct {
	At    time.Time
	Op    string // order, pay, ship, read
	Label string // the status, or "none"
}

// order is an order the client saw answered 201.
type order struct {
	ID         string `json:"id"`
	UserID     string `json:"user_id"`
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	TotalCents int64  `json:"total_cents"`
	payKey     string // the idempotency key it is paid with, once chosen
	paid       bool   // a payment of it was answered 201 or 200
	shipTried  bool
}

// payment is what the client knows of one idempotency key.
type payment struct {
	Key, OrderID string
	Amount       int64
	IDs          map[string]int // payment id -> answers 201/200 carrying it
	Created      int            // answers 201
}

// ledger is everything the client sent and saw: the invariants compare it
// with what the stores hold.
type ledger struct {
	mu       sync.Mutex
	users    []string
	products map[string]int64 // id -> initial stock
	prices   map[string]int64
	orders   map[string]*order
	// orderAttempts counts order requests; orderUnanswered those with no
	// answer or a 5xx (they may have been stored).
	orderAttempts, orderUnanswered int
	payments                       map[string]*payment
	shipped                        map[string]bool // answered 200 to a ship
	requests                       []request
}

func newLedger() *ledger {
	return &ledger{products: map[string]int64{}, prices: map[string]int64{}, orders: map[string]*order{},
		payments: map[string]*payment{}, shipped: map[string]bool{}}
}

func (l *ledger) record(op string, a answer) {
	l.mu.Lock()
	l.requests = append(l.requests, request{At: time.Now(), Op: op, Label: a.label()})
	l.mu.Unlock()
}

// load drives the system through the gateway.
type load struct {
	c      *client
	l      *ledger
	probeU string // the recovery probe's user and product
	probeP string
}

// setup creates the users and products the load uses, definitively: each
// request is retried until it is answered 201 (the system is quiet then).
func (ld *load) setup(ctx context.Context, users, products int, stock int64) error {
	for i := range users + 1 {
		var u struct{ ID string }
		body := map[string]any{"name": fmt.Sprintf("Chaos %d", i), "email": "chaos-" + uuid.NewString()[:12] + "@example.com"}
		if err := ld.create(ctx, "/api/users", body, &u); err != nil {
			return err
		}
		if i == users {
			ld.probeU = u.ID
		} else {
			ld.l.users = append(ld.l.users, u.ID)
		}
	}
	for i := range products + 1 {
		var p struct{ ID string }
		price := int64(100 + 50*i)
		s := stock
		if i == products {
			s = 100000 // the probe's: never runs out
		}
		body := map[string]any{"name": fmt.Sprintf("Chaos product %d", i), "price_cents": price, "stock": s}
		if err := ld.create(ctx, "/api/products", body, &p); err != nil {
			return err
		}
		ld.l.products[p.ID], ld.l.prices[p.ID] = s, price
		if i == products {
			ld.probeP = p.ID
		}
	}
	return nil
}

func (ld *load) create(ctx context.Context, path string, body, into any) error {
	a := ld.c.do(ctx, http.MethodPost, path, body)
	if a.Status != http.StatusCreated {
		return fmt.Errorf("setup POST %s: %d %v %s", path, a.Status, a.Err, a.Body)
	}
	return a.decode(into)
}

// run drives the load with workers until stop is closed. Every loop is
// bounded: by stop, and by maxOps per worker.
func (ld *load) run(workers int, stop <-chan struct{}) *sync.WaitGroup {
	const maxOps = 1_000_000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for range maxOps {
				select {
				case <-stop:
					return
				case <-time.After(60 * time.Millisecond):
				}
				ctx := context.Background()
				switch r := rng.Float64(); {
				case r < 0.30:
					ld.l.mu.Lock()
					u := ld.l.users[rng.IntN(len(ld.l.users))]
					ps := keys(ld.l.products, ld.probeP)
					ld.l.mu.Unlock()
					ld.order(ctx, u, ps[rng.IntN(len(ps))], int64(1+rng.IntN(3)))
				case r < 0.55:
					ld.pay(ctx, rng)
				case r < 0.70:
					ld.ship(ctx)
				default:
					ld.read(ctx, rng)
				}
			}
		})
	}
	return &wg
}

// order places one order; it reports the order if it was answered 201.
func (ld *load) order(ctx context.Context, userID, productID string, qty int64) *order {
	a := ld.c.do(ctx, http.MethodPost, "/api/orders", map[string]any{"user_id": userID, "product_id": productID, "quantity": qty})
	ld.l.record("order", a)
	ld.l.mu.Lock()
	defer ld.l.mu.Unlock()
	ld.l.orderAttempts++
	if a.ambiguous() {
		ld.l.orderUnanswered++
	}
	if a.Status != http.StatusCreated {
		return nil
	}
	var o order
	if err := a.decode(&o); err != nil || o.ID == "" {
		return nil
	}
	o.UserID, o.ProductID = userID, productID // as sent
	ld.l.orders[o.ID] = &o
	return &o
}

// pay pays one order that was answered 201 and has no key yet, with a new
// idempotency key: sometimes two identical requests at once, then retries
// with the same key until the answer is definite (an ambiguous one is
// resolved by asking again, never by guessing), and sometimes a deliberate
// replay afterwards.
func (ld *load) pay(ctx context.Context, rng *rand.Rand) {
	ld.l.mu.Lock()
	var o *order
	for _, cand := range ld.l.orders {
		if cand.payKey == "" && cand.ProductID != ld.probeP {
			o = cand
			break
		}
	}
	if o == nil {
		ld.l.mu.Unlock()
		return
	}
	p := &payment{Key: "chaos-" + uuid.NewString(), OrderID: o.ID, Amount: o.TotalCents, IDs: map[string]int{}}
	o.payKey = p.Key
	ld.l.payments[p.Key] = p
	ld.l.mu.Unlock()

	body := map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}
	send := func() answer {
		a := ld.c.do(ctx, http.MethodPost, "/api/payments", body, "Idempotency-Key", p.Key)
		ld.l.record("pay", a)
		if a.Status == http.StatusCreated || a.Status == http.StatusOK {
			var got struct{ ID string }
			if a.decode(&got) == nil && got.ID != "" {
				ld.l.mu.Lock()
				p.IDs[got.ID]++
				if a.Status == http.StatusCreated {
					p.Created++
				}
				o.paid = true
				ld.l.mu.Unlock()
			}
		}
		return a
	}
	if rng.Float64() < 0.15 {
		var wg sync.WaitGroup
		wg.Go(func() { send() })
		wg.Go(func() { send() })
		wg.Wait()
	}
	for attempt := range 8 {
		a := send()
		if !a.ambiguous() && a.Status != http.StatusConflict {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 500 * time.Millisecond)
	}
	if rng.Float64() < 0.3 {
		send()
	}
}

// ship ships one paid order once; an ambiguous answer is asked again.
func (ld *load) ship(ctx context.Context) {
	ld.l.mu.Lock()
	var o *order
	for _, cand := range ld.l.orders {
		if cand.paid && !cand.shipTried {
			o = cand
			break
		}
	}
	if o == nil {
		ld.l.mu.Unlock()
		return
	}
	o.shipTried = true
	ld.l.mu.Unlock()
	for attempt := range 5 {
		a := ld.c.do(ctx, http.MethodPost, "/api/orders/"+o.ID+"/ship", nil)
		ld.l.record("ship", a)
		if a.Status == http.StatusOK {
			ld.l.mu.Lock()
			ld.l.shipped[o.ID] = true
			ld.l.mu.Unlock()
		}
		if !a.ambiguous() {
			return
		}
		time.Sleep(time.Duration(attempt+1) * 500 * time.Millisecond)
	}
}

// read reads one resource.
func (ld *load) read(ctx context.Context, rng *rand.Rand) {
	ld.l.mu.Lock()
	paths := []string{"/api/users/" + ld.l.users[rng.IntN(len(ld.l.users))]}
	for id := range ld.l.products {
		paths = append(paths, "/api/products/"+id)
		break
	}
	for id := range ld.l.orders {
		paths = append(paths, "/api/orders/"+id)
		break
	}
	paths = append(paths, "/api/notifications?user_id="+ld.l.users[rng.IntN(len(ld.l.users))])
	ld.l.mu.Unlock()
	ld.l.record("read", ld.c.do(ctx, http.MethodGet, paths[rng.IntN(len(paths))], nil))
}

// probe places an order through the gateway until one is answered 201, then
// waits for its email: the system serves and delivers again. It reports how
// long that took.
func (ld *load) probe(ctx context.Context, within time.Duration) (time.Duration, error) {
	start := time.Now()
	end := start.Add(within)
	var o *order
	for o == nil {
		if time.Now().After(end) {
			return 0, fmt.Errorf("no order answered 201 within %s", within)
		}
		if o = ld.order(ctx, ld.probeU, ld.probeP, 1); o == nil {
			time.Sleep(250 * time.Millisecond)
		}
	}
	for time.Now().Before(end) {
		notes, err := ld.notifications(ctx, ld.probeU)
		if err == nil {
			for _, n := range notes {
				if n.OrderID == o.ID {
					return time.Since(start), nil
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return 0, fmt.Errorf("order %s placed but no email within %s", o.ID, within)
}

// notification is one stored notification, as the API lists it.
type notification struct {
	ID      string `json:"id"`
	UserID  string `json:"user_id"`
	OrderID string `json:"order_id"`
	Type    string `json:"type"`
	Channel string `json:"channel"`
}

// notifications lists every notification of a user, page after page (the
// API answers a page and the next page's cursor in the Next-Cursor header).
func (ld *load) notifications(ctx context.Context, userID string) ([]notification, error) {
	return listAll[notification](ctx, ld.c, "/api/notifications?limit=100&user_id="+userID)
}

// listAll reads every page of a list.
func listAll[T any](ctx context.Context, c *client, path string) ([]T, error) {
	var all []T
	cursor := ""
	for range 10000 {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		a := c.do(ctx, http.MethodGet, p, nil)
		if a.Status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %v %s", p, a.Status, a.Err, a.Body)
		}
		var page []T
		if err := a.decode(&page); err != nil {
			return nil, fmt.Errorf("GET %s: %w: %.200s", p, err, a.Body)
		}
		all = append(all, page...)
		if cursor = a.Header.Get("Next-Cursor"); cursor == "" {
			return all, nil
		}
	}
	return nil, fmt.Errorf("GET %s: more than 10000 pages", path)
}

func keys[V any](m map[string]V, except string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != except {
			out = append(out, k)
		}
	}
	return out
}
