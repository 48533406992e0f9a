//go:build bench

package bench

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// EventLatency is the time from an order being stored to its notification
// being stored, per broker.
type EventLatency struct {
	Broker string        `json:"broker"`
	Orders int           `json:"orders"`
	Rate   int           `json:"rate"`
	P50    time.Duration `json:"p50"`
	P99    time.Duration `json:"p99"`
	Max    time.Duration `json:"max"`
}

// eventLatency places orders at a moderate rate and measures, per order, the
// time from the order's created_at (stored by orders) to its notification's
// created_at (stored by notifications), both read from one machine's clock.
func eventLatency(t *testing.T, sys *harness.System, broker string) EventLatency {
	gw := newGateway(t, sys)
	u := gw.create(t, "/api/users", map[string]any{"name": "Events", "email": fmt.Sprintf("events-%d@example.com", time.Now().UnixNano())})
	p := gw.create(t, "/api/products", map[string]any{"name": "Evented", "price_cents": 100, "stock": 1_000_000})
	order := map[string]any{"user_id": u, "product_id": p, "quantity": 1}
	created := map[string]time.Time{}
	tick := time.NewTicker(time.Second / time.Duration(eventRate))
	defer tick.Stop()
	n := eventRate * int(stepDuration/time.Second)
	for range n {
		<-tick.C
		var o struct {
			ID        string    `json:"id"`
			CreatedAt time.Time `json:"created_at"`
		}
		code, err := gw.do(http.MethodPost, "/api/orders", order, &o)
		if err != nil {
			t.Fatalf("place order: %v", err)
		}
		if code == http.StatusCreated {
			created[o.ID] = o.CreatedAt
		}
	}
	type note struct {
		OrderID   string    `json:"order_id"`
		CreatedAt time.Time `json:"created_at"`
	}
	var notes []note
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		// Every page: a paged list names its next page in Next-Cursor.
		notes = notes[:0]
		path := "/api/notifications?user_id=" + url.QueryEscape(u)
		for {
			var page []note
			code, header, err := gw.exchange(http.MethodGet, path, nil, &page)
			if err != nil || code != http.StatusOK {
				break
			}
			notes = append(notes, page...)
			cursor := header.Get("Next-Cursor")
			if cursor == "" {
				break
			}
			path = "/api/notifications?user_id=" + url.QueryEscape(u) + "&cursor=" + url.QueryEscape(cursor)
		}
		if len(notes) >= len(created) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var lat []time.Duration
	for _, note := range notes {
		if at, ok := created[note.OrderID]; ok {
			lat = append(lat, note.CreatedAt.Sub(at))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	el := EventLatency{Broker: broker, Orders: len(lat), Rate: eventRate}
	if len(lat) > 0 {
		el.P50, el.P99, el.Max = pct(lat, 0.50), pct(lat, 0.99), lat[len(lat)-1]
	}
	t.Logf("event latency on %s: %d of %d events, p50 %v p99 %v", broker, len(lat), len(created), el.P50, el.P99)
	return el
}

func pct(sorted []time.Duration, q float64) time.Duration {
	return sorted[int(float64(len(sorted)-1)*q)]
}
