//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// TestFirstStart is a first deployment: an order is placed while
// notifications has never started (on RabbitMQ, a broker that has never seen
// the system: a virtual host of its own; on Redis, a database of its own).
// Once notifications starts, exactly one email arrives. On RabbitMQ this
// holds only because the harness declares the topology from
// subscriptions.yaml before any app starts, as `make run` and compose do: an
// exchange with no queue bound drops what is published to it.
func TestFirstStart(t *testing.T) {
	for _, broker := range brokers {
		t.Run(broker, func(t *testing.T) {
			sys := harness.Start(t, harness.Options{PubSub: broker, Later: []string{"notifications"}})
			gw := sys.GatewayURL()
			u := createUser(t, gw)
			p := createProduct(t, gw, 300, 3)
			o := placeOrder(t, gw, u.ID, p.ID, 1)
			// The event has left orders' outbox (about a second) before its
			// consumer exists: on Redis it is in the stream, on RabbitMQ in
			// notifications' queue.
			if broker == "redis" {
				eventually(t, 30*time.Second, func() (bool, string) {
					n, err := sys.RedisDo("XLEN", "orders")
					require.NoError(t, err)
					return n == ":1", "orders stream length " + n
				})
			} else {
				eventually(t, 30*time.Second, func() (bool, string) {
					n, err := sys.QueueMessages("notifications", "orders")
					require.NoError(t, err)
					return n == 1, fmt.Sprintf("%d messages in notifications' queue", n)
				})
			}

			n := sys.App("notifications")
			n.StartSidecar()
			n.StartApp()
			n.WaitReady()
			notes := waitNotifications(t, gw, u.ID, 1)
			assert.Equal(t, o.ID, notes[0].OrderID)
			assert.Equal(t, "email", notes[0].Channel)
			// Exactly one, also a while later (a redelivery would add one).
			stable(t, 5*time.Second, func() string {
				return fmt.Sprint(len(listNotifications(t, gw, u.ID)))
			})
		})
	}
}

// TestRedisCrashKeepsPayment kills a Redis of the test's own with SIGKILL
// right after a payment was answered 201, and starts it again on the same
// data folder: the payment and its idempotency key record are there, so a
// replay with the same key answers 200 with the same payment. Redis runs as
// compose, testcontainers and `make run` run it: append-only file, fsync
// every second.
func TestRedisCrashKeepsPayment(t *testing.T) {
	redis := harness.StartRedis(t)
	sys := harness.Start(t, harness.Options{Infra: harness.Infra{Redis: redis.Addr()}})
	gw := sys.GatewayURL()
	u := createUser(t, gw)
	p := createProduct(t, gw, 1200, 5)
	o := placeOrder(t, gw, u.ID, p.ID, 1)
	key := "crash-" + uuid.NewString()
	body := map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}

	res := do(t, http.MethodPost, gw+"/api/payments", body, "Idempotency-Key", key)
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	redis.Kill()
	var paid payment
	res.JSON(t, &paid)
	redis.Start()

	var replay response
	eventually(t, 60*time.Second, func() (bool, string) {
		replay = do(t, http.MethodPost, gw+"/api/payments", body, "Idempotency-Key", key)
		return replay.Status == http.StatusOK, fmt.Sprintf("replay answered %d: %s", replay.Status, replay.Body)
	})
	var again payment
	replay.JSON(t, &again)
	assert.Equal(t, paid.ID, again.ID, "the replay answers the payment stored before the crash")
	assert.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	got := do(t, http.MethodGet, gw+"/api/payments/"+paid.ID, nil)
	assert.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
}

// stable checks that value keeps returning what it first returned for d.
func stable(t *testing.T, d time.Duration, value func() string) {
	t.Helper()
	first := value()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		require.Equal(t, first, value(), "changed within %s", d)
		time.Sleep(250 * time.Millisecond)
	}
}

// TestOutboxKeepsEventsThroughStoreOutage: orders answered 201 just before
// PostgreSQL goes away for longer than the outbox's checks (Dapr waits a
// second after the transaction, then reads its marker for up to 10 s) still
// get their events once PostgreSQL is back. The transactions committed, so
// the events must not be dropped: an unreachable store is not a missing
// marker. Found by `make chaos` (cut orders' sidecar from PostgreSQL).
func TestOutboxKeepsEventsThroughStoreOutage(t *testing.T) {
	sys := harness.Start(t, harness.Options{ProxyPostgres: true})
	gw := sys.GatewayURL()
	u := createUser(t, gw)
	p := createProduct(t, gw, 100, 10)
	placed := map[string]bool{}
	for range 3 {
		placed[placeOrder(t, gw, u.ID, p.ID, 1).ID] = true
	}
	// Within the outbox's one-second wait: its checks find the store gone.
	sys.Postgres.Down()
	time.Sleep(12 * time.Second) // the outage itself, longer than the 10 s of checks
	sys.Postgres.Up()

	for _, n := range waitNotifications(t, gw, u.ID, len(placed)) {
		assert.True(t, placed[n.OrderID], "notification of an order not placed: %+v", n)
	}
}

// post sends a JSON body from a load goroutine, where a failed request is
// part of the fault, not of the test: it answers 0 for no answer.
func post(url, body, idempotencyKey string) (int, []byte) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

// TestPaymentEventSurvivesStoreOutage pays an order while orders' PostgreSQL
// is away for a few seconds: payments stores the payment and answers 201,
// orders cannot apply payment_completed meanwhile and answers RETRY, and once
// PostgreSQL is back the order must be paid. A passing outage must not move
// a valid event to the dead letters. Found by `make chaos` (SIGKILL
// PostgreSQL, 5 s, start).
func TestPaymentEventSurvivesStoreOutage(t *testing.T) {
	sys := harness.Start(t, harness.Options{ProxyPostgres: true})
	gw := sys.GatewayURL()
	u := createUser(t, gw)
	p := createProduct(t, gw, 900, 5)
	o := placeOrder(t, gw, u.ID, p.ID, 1)

	// payments checks the order through orders before it pays; the event
	// comes after, through payments' outbox (about a second).
	res := do(t, http.MethodPost, gw+"/api/payments", map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents},
		"Idempotency-Key", "outage-"+uuid.NewString())
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	sys.Postgres.Down()
	time.Sleep(6 * time.Second) // the outage itself
	sys.Postgres.Up()

	eventually(t, 60*time.Second, func() (bool, string) {
		var got paidOrder
		r := do(t, http.MethodGet, gw+"/api/orders/"+o.ID, nil)
		if r.Status != http.StatusOK {
			return false, fmt.Sprintf("order answered %d", r.Status)
		}
		r.JSON(t, &got)
		return got.Status == "paid", "order status " + got.Status
	})
	var dead []deadLetter
	do(t, http.MethodGet, gw+"/api/notifications/dead-letters", nil).JSON(t, &dead)
	assert.Empty(t, dead, "a valid event in the dead letters")
}
