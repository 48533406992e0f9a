package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

// What orders answers Dapr for a payment_completed event: only a final
// refusal (unknown order, a second payment) is DROP (dead letters); a
// passing failure is RETRY, so a payment is never lost under contention.
func TestPaymentEventOutcome(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, d *Desk, f deskFakes) (orderID, paymentID string)
		want  string
	}{
		{"paid", func(t *testing.T, d *Desk, f deskFakes) (string, string) { return place(t, d).ID, "pay-1" }, "SUCCESS"},
		{"unknown order", func(*testing.T, *Desk, deskFakes) (string, string) { return "o-404", "pay-1" }, "DROP"},
		{"second payment", func(t *testing.T, d *Desk, f deskFakes) (string, string) {
			o := place(t, d)
			require.NoError(t, d.MarkPaid(t.Context(), PaymentCompleted{PaymentID: "pay-0", OrderID: o.ID}))
			return o.ID, "pay-1"
		}, "DROP"},
		{"being shipped", func(t *testing.T, d *Desk, f deskFakes) (string, string) {
			o := place(t, d)
			claimOnly(t, f, o.ID, testNow)
			return o.ID, "pay-1"
		}, "RETRY"},
		{"every write loses its race", func(t *testing.T, d *Desk, f deskFakes) (string, string) {
			o := place(t, d)
			f.orders.fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
				if c.Method == "SaveState" {
					return sidecartest.Fault{Err: status.Error(codes.Aborted, "etag mismatch")}
				}
				return sidecartest.Fault{}
			})
			return o.ID, "pay-1"
		}, "RETRY"},
		{"store down", func(t *testing.T, d *Desk, f deskFakes) (string, string) {
			o := place(t, d)
			f.orders.fake.SetFault(func(sidecartest.Call) sidecartest.Fault {
				return sidecartest.Fault{Err: status.Error(codes.Unavailable, "down")}
			})
			return o.ID, "pay-1"
		}, "RETRY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			orderID, paymentID := tt.setup(t, d, f)
			h := routes(slog.New(slog.DiscardHandler), d, http.NotFoundHandler())
			body := `{"specversion":"1.0","id":"ev-1","type":"com.dapr.event.sent","source":"payments","datacontenttype":"application/json",` +
				`"data":{"type":"payment_completed","payment_id":"` + paymentID + `","order_id":"` + orderID + `","amount_cents":1250}}`
			w := httptest.NewRecorder()

			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/events/payments", strings.NewReader(body)))

			var answer map[string]string
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &answer), w.Body.String())
			assert.Equal(t, tt.want, answer["status"])
		})
	}
}
