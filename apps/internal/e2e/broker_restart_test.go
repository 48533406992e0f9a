//go:build e2e && chaos

package e2e

import (
	"encoding/json"
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

// TestBrokerRestartUnderLoad stops a RabbitMQ node of the test's own while
// orders are being placed and paid, starts it again, and expects the event
// flows back: a new order gets its email, a new payment marks its order
// paid. `make chaos` (stop RabbitMQ, 5 s, start, with payments in flight)
// saw orders' sidecar stop consuming afterwards (its
// subscriptions failed with "Exception (503) unexpected command received"
// and stopped retrying): no order event left the outbox, no payment reached
// orders for minutes. This test reproduces it too, now and then (it failed
// in a CI dry run on 2026-11-30: the order placed after the restarts never
// got its email), so it runs with the chaos soak (`make chaos`, build tags
// e2e and chaos), not in `make test`, until the defect is fixed: see the
// README, Chaos.
func TestBrokerRestartUnderLoad(t *testing.T) {
	rabbit := harness.StartRabbitMQ(t)
	sys := harness.Start(t, harness.Options{PubSub: "rabbitmq", Infra: harness.Infra{
		RabbitMQ: rabbit.AMQPURL(), RabbitMQNode: rabbit.Node(), OwnBroker: true,
	}})
	gw := sys.GatewayURL()
	u := createUser(t, gw)
	p := createProduct(t, gw, 100, 100000)

	// Orders keep coming, from four clients, while the broker goes away and
	// comes back, three times (the failure depends on what is in flight).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5000 {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				status, body := post(gw+"/api/orders", jsonf(`{"user_id":%q,"product_id":%q,"quantity":1}`, u.ID, p.ID), "")
				var o order
				if status != http.StatusCreated || json.Unmarshal(body, &o) != nil {
					continue
				}
				// ...and paid: payments publishes through its outbox too,
				// and orders consumes the payment while it publishes.
				post(gw+"/api/payments", jsonf(`{"order_id":%q,"amount_cents":%d}`, o.ID, o.TotalCents), "restart-"+o.ID)
			}
		})
	}
	for range 3 {
		time.Sleep(2 * time.Second) // load before the fault
		rabbit.Stop()
		time.Sleep(5 * time.Second) // the outage
		rabbit.Start()
	}
	time.Sleep(3 * time.Second) // load after it
	close(stop)
	wg.Wait()

	u2 := createUser(t, gw)
	var o order
	eventually(t, 60*time.Second, func() (bool, string) {
		res := do(t, http.MethodPost, gw+"/api/orders", map[string]any{"user_id": u2.ID, "product_id": p.ID, "quantity": 1})
		if res.Status != http.StatusCreated {
			return false, fmt.Sprintf("order answered %d: %s", res.Status, res.Body)
		}
		res.JSON(t, &o)
		return true, ""
	})
	notes := waitNotifications(t, gw, u2.ID, 1)
	assert.Equal(t, o.ID, notes[0].OrderID)

	pay := do(t, http.MethodPost, gw+"/api/payments", map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}, "Idempotency-Key", "restart-"+uuid.NewString())
	require.Equal(t, http.StatusCreated, pay.Status, "%s", pay.Body)
	eventually(t, 60*time.Second, func() (bool, string) {
		var got paidOrder
		do(t, http.MethodGet, gw+"/api/orders/"+o.ID, nil).JSON(t, &got)
		return got.Status == "paid", "order status " + got.Status
	})
}
