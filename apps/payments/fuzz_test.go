package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// paymentsSnapshot is what the fakes behind a Cashier hold.
type paymentsSnapshot struct {
	keys      map[string]KeyRecord
	orders    map[string]string
	payments  map[string]Payment
	published int
}

func (f *fixture) snapshot() paymentsSnapshot {
	f.store.mu.Lock()
	keys := map[string]KeyRecord{}
	for k, v := range f.store.keys {
		keys[k] = v.value
	}
	snap := paymentsSnapshot{keys: keys, orders: maps.Clone(f.store.orders), payments: maps.Clone(f.store.payments)}
	f.store.mu.Unlock()
	snap.published = len(f.events.publishedIDs())
	return snap
}

// FuzzPayHandler posts any body to POST /payments with any Idempotency-Key
// value, sent headers times (0, 1 or 2; the second one differs). Order o-2 is
// paid already under key-done. The fakes do not fail, so the answer is never
// a 5xx: a new payment (201), a replay (200) or a refusal (400, 422), always
// JSON. A refusal stores nothing and announces nothing; a new payment stores
// one payment, claims its order, completes its key and is announced once.
func FuzzPayHandler(f *testing.F) {
	const good = `{"order_id":"o-1","amount_cents":2500}`
	seeds := []struct {
		key     string
		headers uint8
		body    string
	}{
		{"key-1", 1, good},
		{"5b0f4a4e-5f7e-4c1a-9c1e-0f7f1b2c3d4e", 1, ` { "amount_cents": 2500, "order_id": "o-1" } `},
		{"key-done", 1, `{"order_id":"o-2","amount_cents":1000}`},
		{"key-done", 1, `{"order_id":"o-2","amount_cents":999}`},
		{"key-done", 1, good},
		{"key-2", 1, `{"order_id":"o-2","amount_cents":1000}`},
		{"key-1", 1, `{"order_id":"o-paid","amount_cents":700}`},
		{"key-1", 1, `{"order_id":"o-404","amount_cents":2500}`},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":2499}`},
		{"key-1", 0, good},
		{"", 1, good},
		{"key-1", 2, good},
		{strings.Repeat("k", 128), 1, good},
		{strings.Repeat("k", 129), 1, good},
		{"key 1", 1, good},
		{"clé", 1, good},
		{"key\x00", 1, good},
		{"key\r\nX-Evil: 1", 1, good},
		{"!~", 1, good},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":0}`},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":-2500}`},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":25.5}`},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":"2500"}`},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":9223372036854775807}`},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":9223372036854775808}`},
		{"key-1", 1, `{"order_id":"o-1"}`},
		{"key-1", 1, `{"amount_cents":2500}`},
		{"key-1", 1, `{"order_id":"o/1","amount_cents":2500}`},
		{"key-1", 1, `{"order_id":"` + strings.Repeat("o", 65) + `","amount_cents":2500}`},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":2500,"currency":"EUR"}`},
		{"key-1", 1, good + `{}`},
		{"key-1", 1, `[` + good + `]`},
		{"key-1", 1, `null`},
		{"key-1", 1, ``},
		{"key-1", 1, `{"order_id":`},
		{"key-1", 1, "{\"order_id\":\"o-1\xff\",\"amount_cents\":2500}"},
		{"key-1", 1, `{"order_id":"o-1","amount_cents":2500` + strings.Repeat(" ", api.MaxBodyBytes) + `}`},
	}
	for _, s := range seeds {
		f.Add(s.key, s.headers, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, key string, headers uint8, body []byte) {
		h, fx := newTestHandler(t)
		done := serve(t, h, http.MethodPost, "/payments", `{"order_id":"o-2","amount_cents":1000}`, "key-done")
		require.Equal(t, http.StatusCreated, done.Code, done.Body.String())
		before := fx.snapshot()

		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/payments", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(identity.Header, "customer:u-1")
		for i := range int(headers % 3) {
			r.Header.Add(IdempotencyKeyHeader, key+strings.Repeat("x", i))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		require.Contains(t, []int{http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusUnprocessableEntity}, w.Code, w.Body.String())
		require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		require.True(t, json.Valid(w.Body.Bytes()), "the body is JSON: %q", w.Body.String())
		after := fx.snapshot()
		switch w.Code {
		case http.StatusCreated:
			var p Payment
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
			assert.Equal(t, "/payments/"+p.ID, w.Header().Get("Location"))
			assert.Empty(t, w.Header().Get(ReplayedHeader))
			assert.True(t, p.sameAs(after.payments[p.ID]), "the stored payment is the one answered")
			assert.Len(t, after.payments, len(before.payments)+1)
			assert.Equal(t, p.ID, after.orders[p.OrderID], "the order is claimed by the payment")
			assert.NotContains(t, before.orders, p.OrderID)
			rec, ok := fx.store.keyRecord(key)
			require.True(t, ok, "the key is kept")
			assert.Equal(t, keyCompleted, rec.Status)
			assert.Equal(t, p.ID, rec.Payment.ID)
			assert.Equal(t, before.published+1, after.published, "announced once")
		case http.StatusOK:
			var p Payment
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
			assert.Equal(t, "true", w.Header().Get(ReplayedHeader))
			assert.True(t, p.sameAs(before.payments[p.ID]), "a replay answers the stored payment")
			assert.Equal(t, before, after, "a replay changes nothing")
		default:
			var e api.ErrorBody
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
			assert.NotEmpty(t, e.Error.Code)
			assert.Empty(t, w.Header().Get("Location"))
			assert.Empty(t, w.Header().Get(ReplayedHeader))
			assert.Equal(t, before, after, "a refused payment stores nothing")
		}
	})
}
