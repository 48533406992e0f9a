package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// deskSnapshot is what the fakes behind a Desk hold.
type deskSnapshot struct {
	orders   map[string]Order
	raw      map[string]string
	events   int
	products map[string]product
	reserved map[string]reservation
}

func (f deskFakes) snapshot(t *testing.T) deskSnapshot {
	t.Helper()
	f.catalog.mu.Lock()
	defer f.catalog.mu.Unlock()
	return deskSnapshot{
		orders:   f.orders.all(t),
		raw:      f.orders.raw(),
		events:   len(f.orders.events(t)),
		products: maps.Clone(f.catalog.products),
		reserved: maps.Clone(f.catalog.reserved),
	}
}

// postTo sends body to a POST route of h.
func postTo(t *testing.T, h http.Handler, target string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, target, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	asCustomer(r, body)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// FuzzPlaceHandler posts any body to POST /orders (user u-1 and product p-1,
// 1250 cents, 10 in stock, exist). The answer is 201, 400, 409 or 422 with
// JSON, never a 5xx (no fake fails); a refused order stores nothing and holds
// no stock; a placed one is stored, holds its quantity and is announced once.
func FuzzPlaceHandler(f *testing.F) {
	for _, body := range []string{
		`{"user_id":"u-1","product_id":"p-1","quantity":2}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":10}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":11}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":10000}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":10001}`,
		`{"user_id":"u-9","product_id":"p-1","quantity":2}`,
		`{"user_id":"u-1","product_id":"p-9","quantity":2}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":0}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":-1}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":1.5}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":"2"}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":null}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":9223372036854775808}`,
		`{"user_id":"u-1","product_id":"p-1"}`,
		`{"user_id":"u-1","quantity":2}`,
		`{"product_id":"p-1","quantity":2}`,
		`{"user_id":"","product_id":"p-1","quantity":2}`,
		`{"user_id":"u/1","product_id":"p-1","quantity":2}`,
		`{"user_id":"u-1","product_id":"p 1","quantity":2}`,
		`{"user_id":"u-1","product_id":"` + strings.Repeat("p", 65) + `","quantity":2}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":2,"total_cents":1}`,
		`{"user_id":"u-1","product_id":"p-1","quantity":2}{}`,
		`[{"user_id":"u-1","product_id":"p-1","quantity":2}]`,
		`null`,
		`{}`,
		``,
		`{"user_id":`,
		"{\"user_id\":\"u-1\xff\",\"product_id\":\"p-1\",\"quantity\":2}",
		`{"user_id":"u-1","product_id":"p-1","quantity":2` + strings.Repeat(" ", api.MaxBodyBytes) + `}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, fakes := newTestDesk(t)
		h := routes(slog.New(slog.DiscardHandler), d, http.NotFoundHandler())
		before := fakes.snapshot(t)

		w := postTo(t, h, "/orders", body)

		require.Contains(t, []int{http.StatusCreated, http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity}, w.Code, w.Body.String())
		require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		require.True(t, json.Valid(w.Body.Bytes()), "the body is JSON: %q", w.Body.String())
		after := fakes.snapshot(t)
		if w.Code != http.StatusCreated {
			var e api.ErrorBody
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
			assert.NotEmpty(t, e.Error.Code)
			assert.Empty(t, w.Header().Get("Location"))
			assert.Equal(t, before, after, "a refused order stores nothing and holds no stock")
			return
		}
		var o Order
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &o))
		assert.Equal(t, "/orders/"+o.ID, w.Header().Get("Location"))
		assert.Equal(t, o, after.orders[o.ID], "the stored order is the one answered")
		assert.Equal(t, StatusCreated, o.Status)
		assert.Equal(t, before.products[o.ProductID].PriceCents*o.Quantity, o.TotalCents)
		assert.Equal(t, before.products[o.ProductID].Stock-o.Quantity, after.products[o.ProductID].Stock)
		assert.Equal(t, reservation{o.ProductID, o.ID, o.Quantity}, after.reserved[o.ID])
		assert.Equal(t, before.events+1, after.events, "announced once")
	})
}

// newPaidDesk returns the routes over a Desk holding order o-1 (created) and
// order o-paid (paid by pay-9).
func newPaidDesk(t *testing.T) (http.Handler, deskFakes) {
	t.Helper()
	d, fakes := newTestDesk(t)
	_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr(int64(2))})
	require.NoError(t, err)
	paidAt := testNow.Add(-time.Hour)
	paid := Order{ID: "o-paid", UserID: "u-1", ProductID: "p-1", Quantity: 1, TotalCents: 1250, Status: StatusPaid, CreatedAt: paidAt, PaidAt: &paidAt, PaymentID: "pay-9"}
	require.NoError(t, fakes.orders.Create(t.Context(), paid, eventFor(EventOrderCreated, paid, paidAt)))
	return routes(slog.New(slog.DiscardHandler), d, http.NotFoundHandler()), fakes
}

// FuzzPaymentEventHandler posts any body to POST /events/payments. The answer
// is 200 {"status":"SUCCESS"} or {"status":"DROP"}: with fakes that do not
// fail there is nothing to retry. A dropped event changes no order; a handled
// one records one payment on one order and announces nothing.
func FuzzPaymentEventHandler(f *testing.F) {
	event := func(id, data string) string {
		return `{"specversion":"1.0","id":"` + id + `","type":"com.dapr.event.sent","source":"payments","topic":"payments","pubsubname":"orderpubsub","datacontenttype":"application/json","data":` + data + `}`
	}
	for _, body := range []string{
		event("ev-1", `{"type":"payment_completed","payment_id":"pay-1","order_id":"o-1","amount_cents":2500}`),
		event("ev-1", `"{\"type\":\"payment_completed\",\"payment_id\":\"pay-1\",\"order_id\":\"o-1\",\"amount_cents\":2500}"`),
		event("ev-2", `{"type":"payment_completed","payment_id":"pay-9","order_id":"o-paid","amount_cents":1250}`),
		event("ev-3", `{"type":"payment_completed","payment_id":"pay-2","order_id":"o-paid","amount_cents":1250}`),
		event("ev-4", `{"type":"payment_completed","payment_id":"pay-1","order_id":"o-404","amount_cents":1}`),
		event("ev-5", `{"type":"payment_refunded","payment_id":"pay-1","order_id":"o-1","amount_cents":2500}`),
		event("ev-6", `{"type":"payment_completed","order_id":"o-1","amount_cents":2500}`),
		event("ev-7", `{"type":"payment_completed","payment_id":"pay-1","amount_cents":2500}`),
		event("ev-8", `{"type":"payment_completed","payment_id":"pay-1","order_id":"o/1","amount_cents":2500}`),
		event("ev-9", `{"type":"payment_completed","payment_id":"pay-1","order_id":"o-1","amount_cents":"2500"}`),
		event("ev-10", `{"type":"payment_completed","payment_id":1,"order_id":"o-1"}`),
		event("ev-11", `null`),
		event("ev-12", `"not json"`),
		event("ev-13", `[1,2]`),
		`{"id":"ev-14"}`,
		`{"id":"ev-15","data":`,
		`[]`,
		`null`,
		``,
		`not json`,
		"\xff\xfe",
		event("ev-16", `{"type":"payment_completed","payment_id":"`+strings.Repeat("x", api.MaxBodyBytes)+`","order_id":"o-1"}`),
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, fakes := newPaidDesk(t)
		before := fakes.snapshot(t)

		w := postTo(t, h, "/events/payments", body)

		require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		var answer map[string]string
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &answer), w.Body.String())
		require.Len(t, answer, 1, w.Body.String())
		status := answer["status"]
		switch status {
		case "SUCCESS", "DROP":
			require.Equal(t, http.StatusOK, w.Code)
		case "RETRY":
			require.Equal(t, http.StatusInternalServerError, w.Code)
			require.Fail(t, "nothing failed, yet the event is to be retried", "body %q", body)
		default:
			require.Fail(t, "unknown status", "%q (HTTP %d) for body %q", status, w.Code, body)
		}
		after := fakes.snapshot(t)
		assert.Equal(t, before.events, after.events, "marking paid announces nothing")
		assert.Equal(t, before.products, after.products)
		assert.Equal(t, before.reserved, after.reserved)
		if status == "DROP" {
			assert.Equal(t, before.orders, after.orders, "a dropped event changes no order")
			return
		}
		changed := 0
		for id, o := range after.orders {
			was := before.orders[id]
			if assert.ObjectsAreEqual(was, o) {
				continue
			}
			changed++
			assert.Empty(t, was.PaymentID, "only an unpaid order takes a payment")
			assert.NotEmpty(t, o.PaymentID)
			require.NotNil(t, o.PaidAt)
			assert.Equal(t, testNow, *o.PaidAt)
			assert.Equal(t, StatusPaid, o.Status)
		}
		assert.LessOrEqual(t, changed, 1, "one event pays one order")
	})
}
