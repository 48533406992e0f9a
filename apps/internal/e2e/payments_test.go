//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

type payment struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
}

type paidOrder struct {
	order
	PaymentID string     `json:"payment_id"`
	PaidAt    *time.Time `json:"paid_at"`
}

// TestPayments covers idempotent payments against the real Redis store.
func TestPayments(t *testing.T) {
	sys := harness.Start(t, harness.Options{})
	gw := sys.GatewayURL()
	u := createUser(t, gw)
	p := createProduct(t, gw, 1500, 100)
	storedPayments := func() string {
		n, err := sys.RedisDo("EVAL", `return #redis.call('KEYS', ARGV[1])`, "0", sys.App("payments").ID+"||payment/*")
		require.NoError(t, err)
		return n
	}

	t.Run("100 concurrent payments with one key make one payment", func(t *testing.T) {
		o := placeOrder(t, gw, u.ID, p.ID, 2)
		key := "pay-" + uuid.NewString()
		body := map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}
		const n = 100
		results := make([]response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = do(t, http.MethodPost, gw+"/api/payments", body, "Idempotency-Key", key) })
		}
		wg.Wait()
		ids := map[string]int{}
		codes := map[int]int{}
		for _, r := range results {
			codes[r.Status]++
			switch r.Status {
			case http.StatusCreated, http.StatusOK:
				var pay payment
				r.JSON(t, &pay)
				ids[pay.ID]++
				if r.Status == http.StatusOK {
					assert.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
				}
			case http.StatusConflict:
				assert.Equal(t, "request_in_flight", r.ErrorCode(), "%s", r.Body)
			default:
				t.Errorf("unexpected answer %d: %s", r.Status, r.Body)
			}
		}
		t.Logf("answers: %v", codes)
		assert.Equal(t, 1, codes[http.StatusCreated], "exactly one request created the payment")
		require.Len(t, ids, 1, "every answer carries the same payment: %v", ids)
		assert.Equal(t, ":1", storedPayments())

		var payID string
		for id := range ids {
			payID = id
		}
		res := do(t, http.MethodGet, gw+"/api/payments/"+payID, nil)
		require.Equal(t, http.StatusOK, res.Status)

		// payment_completed reaches orders, which marks the order paid.
		eventually(t, 30*time.Second, func() (bool, string) {
			var got paidOrder
			do(t, http.MethodGet, gw+"/api/orders/"+o.ID, nil).JSON(t, &got)
			return got.Status == "paid" && got.PaymentID == payID, "order status " + got.Status
		})

		// Same key, another amount: 422 and nothing stored.
		res = do(t, http.MethodPost, gw+"/api/payments", map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents + 1}, "Idempotency-Key", key)
		assert.Equal(t, http.StatusUnprocessableEntity, res.Status, "%s", res.Body)
		assert.Equal(t, "idempotency_key_reused", res.ErrorCode())
		assert.Equal(t, ":1", storedPayments())
	})

	t.Run("unknown order, paid order, wrong amount: 422", func(t *testing.T) {
		paid := placeOrder(t, gw, u.ID, p.ID, 1)
		res := do(t, http.MethodPost, gw+"/api/payments", map[string]any{"order_id": paid.ID, "amount_cents": paid.TotalCents}, "Idempotency-Key", uuid.NewString())
		require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
		fresh := placeOrder(t, gw, u.ID, p.ID, 1)
		before := storedPayments()
		for _, tc := range []struct {
			name string
			body map[string]any
			code string
		}{
			{"unknown order", map[string]any{"order_id": "no-such-order", "amount_cents": 100}, "unknown_order"},
			{"paid order", map[string]any{"order_id": paid.ID, "amount_cents": paid.TotalCents}, "order_already_paid"},
			{"wrong amount", map[string]any{"order_id": fresh.ID, "amount_cents": fresh.TotalCents - 1}, "amount_mismatch"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := do(t, http.MethodPost, gw+"/api/payments", tc.body, "Idempotency-Key", uuid.NewString())
				assert.Equal(t, http.StatusUnprocessableEntity, res.Status, "%s", res.Body)
				assert.Equal(t, tc.code, res.ErrorCode())
			})
		}
		assert.Equal(t, before, storedPayments(), "no refused payment is stored")
	})

	t.Run("no key or a bad body is 400", func(t *testing.T) {
		o := placeOrder(t, gw, u.ID, p.ID, 1)
		res := do(t, http.MethodPost, gw+"/api/payments", map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents})
		assert.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
		res = do(t, http.MethodPost, gw+"/api/payments", `{"order_id":`, "Idempotency-Key", uuid.NewString())
		assert.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
	})

	t.Run("a redelivered payment_completed leaves the order paid once", func(t *testing.T) {
		o := placeOrder(t, gw, u.ID, p.ID, 1)
		res := do(t, http.MethodPost, gw+"/api/payments", map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}, "Idempotency-Key", uuid.NewString())
		require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
		var pay payment
		res.JSON(t, &pay)
		var first paidOrder
		eventually(t, 30*time.Second, func() (bool, string) {
			do(t, http.MethodGet, gw+"/api/orders/"+o.ID, nil).JSON(t, &first)
			return first.Status == "paid", "order status " + first.Status
		})
		require.NotNil(t, first.PaidAt)

		// The same event again, with the same id, as a broker redelivery would.
		ce := cloudEvent(pay.ID, map[string]any{"type": "payment_completed", "payment_id": pay.ID, "order_id": o.ID, "amount_cents": o.TotalCents})
		publish(t, sys.App("payments"), "payments", ce)
		publish(t, sys.App("payments"), "payments", ce)
		// A later event of another order shows the two were handled before it.
		later := placeOrder(t, gw, u.ID, p.ID, 1)
		res = do(t, http.MethodPost, gw+"/api/payments", map[string]any{"order_id": later.ID, "amount_cents": later.TotalCents}, "Idempotency-Key", uuid.NewString())
		require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
		eventually(t, 30*time.Second, func() (bool, string) {
			var got paidOrder
			do(t, http.MethodGet, gw+"/api/orders/"+later.ID, nil).JSON(t, &got)
			return got.Status == "paid", "later order status " + got.Status
		})
		var after paidOrder
		do(t, http.MethodGet, gw+"/api/orders/"+o.ID, nil).JSON(t, &after)
		assert.Equal(t, "paid", after.Status)
		assert.Equal(t, pay.ID, after.PaymentID)
		assert.True(t, first.PaidAt.Equal(*after.PaidAt), "the redelivery changed nothing")
	})
}

// TestStockUnderContention places 200 one-unit orders at once against a
// product with 50 in stock.
func TestStockUnderContention(t *testing.T) {
	sys := harness.Start(t, harness.Options{})
	gw := sys.GatewayURL()
	u := createUser(t, gw)
	p := createProduct(t, gw, 300, 50)

	const n = 200
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res := do(t, http.MethodPost, gw+"/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
			statuses[i] = res.Status
			if res.Status != http.StatusCreated && res.Status != http.StatusConflict {
				t.Errorf("unexpected %d: %s", res.Status, res.Body)
			}
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	assert.Equal(t, map[int]int{http.StatusCreated: 50, http.StatusConflict: 150}, count)
	assert.Equal(t, int64(0), getProduct(t, gw, p.ID).Stock)

	// One order_created event per order: the notifications say so, and so
	// does the topic itself (a Redis stream in this system's database).
	waitNotifications(t, gw, u.ID, 50)
	events, err := sys.RedisDo("XLEN", "orders")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(":%d", 50), events)
}
