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

type notification struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	OrderID   string    `json:"order_id"`
	Type      string    `json:"type"`
	Channel   string    `json:"channel"`
	EventID   string    `json:"event_id"`
	CreatedAt time.Time `json:"created_at"`
}

type deadLetter struct {
	EventID string `json:"event_id"`
	Topic   string `json:"topic"`
	Reason  string `json:"reason"`
}

var brokers = []string{"redis", "rabbitmq"}

// TestOrderEvents runs the event flows against each broker behind orderpubsub.
func TestOrderEvents(t *testing.T) {
	for _, broker := range brokers {
		t.Run(broker, func(t *testing.T) {
			sys := harness.Start(t, harness.Options{PubSub: broker})
			gw := sys.GatewayURL()

			t.Run("created then shipped: one email, one sms", func(t *testing.T) {
				u := createUser(t, gw)
				p := createProduct(t, gw, 500, 5)
				o := placeOrder(t, gw, u.ID, p.ID, 1)
				waitNotifications(t, gw, u.ID, 1)

				res := do(t, http.MethodPost, gw+"/api/orders/"+o.ID+"/ship", nil)
				require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
				var shipped order
				res.JSON(t, &shipped)
				assert.Equal(t, "shipped", shipped.Status)

				notes := waitNotifications(t, gw, u.ID, 2)
				byChannel := map[string]int{}
				for _, n := range notes {
					byChannel[n.Channel]++
					assert.Equal(t, o.ID, n.OrderID)
				}
				assert.Equal(t, map[string]int{"email": 1, "sms": 1}, byChannel)
				assert.Equal(t, "order_created", notes[0].Type)
				assert.Equal(t, "order_shipped", notes[1].Type)
			})

			t.Run("two concurrent ships: one 200, one 409, one sms", func(t *testing.T) {
				u := createUser(t, gw)
				p := createProduct(t, gw, 500, 5)
				o := placeOrder(t, gw, u.ID, p.ID, 1)
				statuses := make([]int, 2)
				var wg sync.WaitGroup
				for i := range statuses {
					wg.Go(func() { statuses[i] = do(t, http.MethodPost, gw+"/api/orders/"+o.ID+"/ship", nil).Status })
				}
				wg.Wait()
				assert.ElementsMatch(t, []int{http.StatusOK, http.StatusConflict}, statuses)
				notes := waitNotifications(t, gw, u.ID, 2)
				sms := 0
				for _, n := range notes {
					if n.Channel == "sms" {
						sms++
					}
				}
				assert.Equal(t, 1, sms)
				res := do(t, http.MethodPost, gw+"/api/orders/"+o.ID+"/ship", nil)
				assert.Equal(t, http.StatusConflict, res.Status)
				assert.Equal(t, "invalid_state", res.ErrorCode())
			})

			t.Run("a redelivered event makes one notification", func(t *testing.T) {
				u := createUser(t, gw)
				orderID := "o-" + uuid.NewString()
				event := cloudEvent(uuid.NewString(), map[string]any{"type": "order_created", "order_id": orderID, "user_id": u.ID})
				for range 2 {
					publish(t, sys.App("orders"), "orders", event)
				}
				waitNotifications(t, gw, u.ID, 1)
				// The sidecar delivers events concurrently, in no set order:
				// only the subscription holding nothing unsettled shows both
				// copies were handled.
				eventually(t, 60*time.Second, func() (bool, string) {
					n, err := sys.InFlight("notifications", "orders")
					if err != nil {
						return false, err.Error()
					}
					return n == 0, fmt.Sprintf("%d order events not yet settled by notifications", n)
				})
				notes := waitNotifications(t, gw, u.ID, 1)
				assert.Equal(t, "email", notes[0].Channel)
				assert.Equal(t, event["id"], notes[0].EventID)
			})

			t.Run("a poison message ends in the dead letters", func(t *testing.T) {
				u := createUser(t, gw)
				id := "poison-" + uuid.NewString()
				publish(t, sys.App("orders"), "orders", cloudEvent(id, map[string]any{"type": "order_teleported", "order_id": "o-1", "user_id": u.ID}))
				var dl deadLetter
				eventually(t, 30*time.Second, func() (bool, string) {
					res := do(t, http.MethodGet, gw+"/api/notifications/dead-letters", nil)
					var list []deadLetter
					res.JSON(t, &list)
					for _, d := range list {
						if d.EventID == id {
							dl = d
							return true, ""
						}
					}
					return false, fmt.Sprintf("%d dead letters, none with id %s", len(list), id)
				})
				assert.Contains(t, dl.Reason, "unknown event type")
				assert.Empty(t, listNotifications(t, gw, u.ID), "no notification for a poison message")
			})

			t.Run("consumer down: 50 orders wait and arrive once each", func(t *testing.T) {
				u := createUser(t, gw)
				p := createProduct(t, gw, 100, 100)
				n := sys.App("notifications")
				n.StopApp()
				n.StopSidecar()
				orders := map[string]bool{}
				for range 50 {
					orders[placeOrder(t, gw, u.ID, p.ID, 1).ID] = true
				}
				n.StartSidecar()
				n.StartApp()
				n.WaitReady()
				notes := waitNotifications(t, gw, u.ID, 50)
				seen := map[string]int{}
				for _, note := range notes {
					seen[note.OrderID]++
					assert.Equal(t, "email", note.Channel)
				}
				for id := range orders {
					assert.Equal(t, 1, seen[id], "order %s", id)
				}
			})
		})
	}
}

// TestOutbox takes PostgreSQL away from orders: placing an order fails with a
// clear 503 and publishes nothing; once it is back, every stored order has
// its event and every event its order.
func TestOutbox(t *testing.T) {
	sys := harness.Start(t, harness.Options{ProxyPostgres: true})
	gw := sys.GatewayURL()
	u := createUser(t, gw)
	p := createProduct(t, gw, 700, 10)

	sys.Postgres.Down()
	for range 3 {
		res := do(t, http.MethodPost, gw+"/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
		assert.Equal(t, http.StatusServiceUnavailable, res.Status, "%s", res.Body)
		assert.Equal(t, "dependency_unavailable", res.ErrorCode())
	}
	assert.Equal(t, int64(10), getProduct(t, gw, p.ID).Stock, "failed orders hold no stock")
	sys.Postgres.Up()

	var o order
	eventually(t, 30*time.Second, func() (bool, string) {
		res := do(t, http.MethodPost, gw+"/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
		if res.Status != http.StatusCreated {
			return false, fmt.Sprintf("%d %s", res.Status, res.Body)
		}
		res.JSON(t, &o)
		return true, ""
	})
	notes := waitNotifications(t, gw, u.ID, 1)
	assert.Equal(t, o.ID, notes[0].OrderID, "the only event is the stored order's")
	assert.Equal(t, http.StatusOK, do(t, http.MethodGet, gw+"/api/orders/"+notes[0].OrderID, nil).Status)
	assert.Equal(t, int64(9), getProduct(t, gw, p.ID).Stock)
	// Nothing was staged for the failed orders: the outbox's internal topic
	// (a Redis stream named <namespace><app id><topic>outbox) holds one event.
	staged, err := sys.RedisDo("XLEN", "default"+sys.App("orders").ID+"ordersoutbox")
	require.NoError(t, err)
	assert.Equal(t, ":1", staged)
	assert.Len(t, listNotifications(t, gw, u.ID), 1)
}

func placeOrder(t *testing.T, gw, userID, productID string, qty int) order {
	t.Helper()
	res := do(t, http.MethodPost, gw+"/api/orders", map[string]any{"user_id": userID, "product_id": productID, "quantity": qty})
	require.Equal(t, http.StatusCreated, res.Status, "place order: %s", res.Body)
	var o order
	res.JSON(t, &o)
	return o
}

func listNotifications(t *testing.T, gw, userID string) []notification {
	t.Helper()
	res := do(t, http.MethodGet, gw+"/api/notifications?user_id="+userID, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	var list []notification
	res.JSON(t, &list)
	return list
}

// waitNotifications polls until the user has n notifications and returns
// them; more than n fails at once.
func waitNotifications(t *testing.T, gw, userID string, n int) []notification {
	t.Helper()
	var list []notification
	eventually(t, 60*time.Second, func() (bool, string) {
		res := do(t, http.MethodGet, gw+"/api/notifications?user_id="+userID, nil)
		if res.Status != http.StatusOK {
			return false, fmt.Sprintf("notifications answered %d: %s", res.Status, res.Body)
		}
		res.JSON(t, &list)
		require.LessOrEqual(t, len(list), n, "more notifications than events: %+v", list)
		return len(list) == n, fmt.Sprintf("%d of %d notifications", len(list), n)
	})
	return list
}

func cloudEvent(id string, data map[string]any) map[string]any {
	return map[string]any{
		"specversion":     "1.0",
		"id":              id,
		"source":          "e2e",
		"type":            "com.dapr.event.sent",
		"datacontenttype": "application/json",
		"data":            data,
	}
}

// publish sends a CloudEvent through an app's sidecar, as is: Dapr keeps the
// id, so publishing one event twice is a redelivery.
func publish(t *testing.T, via *harness.App, topic string, ce map[string]any) {
	t.Helper()
	res := do(t, http.MethodPost, via.SidecarURL()+"/v1.0/publish/orderpubsub/"+topic, ce,
		"Content-Type", "application/cloudevents+json", "dapr-api-token", via.System().DaprToken)
	require.Equal(t, http.StatusNoContent, res.Status, "publish: %s", res.Body)
}
