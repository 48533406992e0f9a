package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// newTestHandler serves the payments routes over a fixture.
func newTestHandler(t *testing.T) (http.Handler, *fixture) {
	t.Helper()
	f := newFixture(t)
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return routes(slog.New(slog.DiscardHandler), f.cashier, ready), f
}

// serve sends a request with the given Idempotency-Key headers (none when
// keys is nil) and returns the recorded response.
func serve(t *testing.T, h http.Handler, method, path, body string, keys ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(identity.Header, "customer:u-1") // the fixture's orders are u-1's
	for _, k := range keys {
		r.Header.Add(IdempotencyKeyHeader, k)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// decodeMap decodes a JSON object body.
func decodeMap(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m), w.Body.String())
	return m
}

// errorCode returns the code of a JSON error body, checking its shape.
func errorCode(t *testing.T, w *httptest.ResponseRecorder) api.Code {
	t.Helper()
	body := decodeMap(t, w)
	require.Contains(t, body, "error", "want an error body, got %v", body)
	e, ok := body["error"].(map[string]any)
	require.True(t, ok, "error is an object: %v", body)
	require.Len(t, e, 2, "error holds exactly code and message: %v", e)
	require.NotEmpty(t, e["message"])
	return api.Code(e["code"].(string))
}

func TestPayHandlerCreatesThenReplays(t *testing.T) {
	h, f := newTestHandler(t)

	created := serve(t, h, http.MethodPost, "/payments", `{"order_id":"o-1","amount_cents":2500}`, "key-1")

	require.Equal(t, http.StatusCreated, created.Code, created.Body.String())
	assert.Equal(t, "/payments/pay-1", created.Header().Get("Location"))
	assert.Empty(t, created.Header().Get(ReplayedHeader))
	assert.Equal(t, map[string]any{
		"id":           "pay-1",
		"order_id":     "o-1",
		"amount_cents": float64(2500),
		"status":       "completed",
		"created_at":   testNow.Format(time.RFC3339Nano),
	}, decodeMap(t, created))

	for i := range 2 {
		t.Run(fmt.Sprintf("replay %d", i+1), func(t *testing.T) {
			f.clock.advance(time.Minute)

			replay := serve(t, h, http.MethodPost, "/payments", ` { "amount_cents": 2500, "order_id": "o-1" } `, "key-1")

			require.Equal(t, http.StatusOK, replay.Code, replay.Body.String())
			assert.Equal(t, "true", replay.Header().Get(ReplayedHeader))
			assert.Equal(t, "/payments/pay-1", replay.Header().Get("Location"))
			assert.JSONEq(t, created.Body.String(), replay.Body.String(), "the same payment body")
			assert.Len(t, f.store.storedPayments(), 1)
		})
	}

	t.Run("same key, another body", func(t *testing.T) {
		w := serve(t, h, http.MethodPost, "/payments", `{"order_id":"o-1","amount_cents":2400}`, "key-1")

		assert.Equal(t, http.StatusUnprocessableEntity, w.Code)
		assert.Equal(t, api.CodeIdempotencyKeyReused, errorCode(t, w))
		assert.Empty(t, w.Header().Get(ReplayedHeader))
		assert.Len(t, f.store.storedPayments(), 1)
	})

	t.Run("read back", func(t *testing.T) {
		w := serve(t, h, http.MethodGet, "/payments/pay-1", "")

		require.Equal(t, http.StatusOK, w.Code)
		assert.JSONEq(t, created.Body.String(), w.Body.String())
	})
}

func TestPayHandlerRejects(t *testing.T) {
	const good = `{"order_id":"o-1","amount_cents":2500}`
	tests := []struct {
		name       string
		body       string
		keys       []string
		wantStatus int
		wantCode   api.Code
	}{
		{"no Idempotency-Key", good, nil, http.StatusBadRequest, api.CodeInvalidRequest},
		{"empty Idempotency-Key", good, []string{""}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"Idempotency-Key of 129 characters", good, []string{strings.Repeat("k", 129)}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"Idempotency-Key with a space", good, []string{"key 1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"Idempotency-Key with non-ASCII", good, []string{"clé"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"Idempotency-Key with a control character", good, []string{"key\x00"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"two Idempotency-Keys", good, []string{"key-1", "key-2"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"malformed JSON", `{"order_id":"o-1",`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"not JSON", `order_id=o-1`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"empty body", ``, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"unknown field", `{"order_id":"o-1","amount_cents":2500,"currency":"EUR"}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"amount as a string", `{"order_id":"o-1","amount_cents":"2500"}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"fractional amount", `{"order_id":"o-1","amount_cents":25.5}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"amount beyond int64", `{"order_id":"o-1","amount_cents":9223372036854775808}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"zero amount", `{"order_id":"o-1","amount_cents":0}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"negative amount", `{"order_id":"o-1","amount_cents":-1}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"missing amount", `{"order_id":"o-1"}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"missing order id", `{"amount_cents":2500}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"order id of the wrong type", `{"order_id":1,"amount_cents":2500}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"invalid order id", `{"order_id":"o/1","amount_cents":2500}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"array body", `[` + good + `]`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"two objects", good + `{}`, []string{"key-1"}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"body too large", `{"order_id":"` + strings.Repeat("o", api.MaxBodyBytes) + `","amount_cents":1}`, []string{"key-1"}, api.CodeBodyTooLarge.Status(), api.CodeBodyTooLarge},
		{"unknown order", `{"order_id":"o-404","amount_cents":2500}`, []string{"key-1"}, http.StatusUnprocessableEntity, api.CodeUnknownOrder},
		{"paid order", `{"order_id":"o-paid","amount_cents":700}`, []string{"key-1"}, http.StatusUnprocessableEntity, api.CodeOrderAlreadyPaid},
		{"wrong amount", `{"order_id":"o-1","amount_cents":2499}`, []string{"key-1"}, http.StatusUnprocessableEntity, api.CodeAmountMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := newTestHandler(t)

			w := serve(t, h, http.MethodPost, "/payments", tt.body, tt.keys...)

			assert.Equal(t, tt.wantStatus, w.Code, w.Body.String())
			assert.Equal(t, tt.wantCode, errorCode(t, w))
			assert.Empty(t, w.Header().Get("Location"))
			assert.Empty(t, f.store.storedKeys(), "a rejected request leaves no key")
			assert.Empty(t, f.store.storedPayments())
		})
	}
}

func TestPayHandlerDependencyDown(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
	}{
		{"orders unavailable", func(f *fixture) { f.orders.err = fmt.Errorf("GET orders: %w: connection refused", api.ErrUnavailable) }},
		{"store unavailable", func(f *fixture) {
			f.store.failNext("ClaimKey", 1, fmt.Errorf("%w: connection refused", api.ErrUnavailable))
		}},
		{"broker unavailable", func(f *fixture) { f.events.failNext(1, fmt.Errorf("%w: connection refused", api.ErrUnavailable)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := newTestHandler(t)
			tt.setup(f)

			w := serve(t, h, http.MethodPost, "/payments", `{"order_id":"o-1","amount_cents":2500}`, "key-1")

			assert.Equal(t, http.StatusServiceUnavailable, w.Code)
			assert.Equal(t, api.CodeDependencyUnavailable, errorCode(t, w))
			assert.NotContains(t, w.Body.String(), "connection refused")
		})
	}
}

func TestPaymentHandler(t *testing.T) {
	h, _ := newTestHandler(t)
	created := serve(t, h, http.MethodPost, "/payments", `{"order_id":"o-1","amount_cents":2500}`, "key-1")
	require.Equal(t, http.StatusCreated, created.Code)

	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCode   api.Code
	}{
		{name: "known payment", method: http.MethodGet, path: "/payments/pay-1", wantStatus: http.StatusOK},
		{name: "unknown payment", method: http.MethodGet, path: "/payments/pay-404", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "invalid id", method: http.MethodGet, path: "/payments/a.b", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "overlong id", method: http.MethodGet, path: "/payments/" + strings.Repeat("p", 65), wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "listing is not offered", method: http.MethodGet, path: "/payments", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
		{name: "delete is not offered", method: http.MethodDelete, path: "/payments/pay-1", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, h, tt.method, tt.path, "")

			assert.Equal(t, tt.wantStatus, w.Code)
			if tt.wantCode == "" {
				assert.JSONEq(t, created.Body.String(), w.Body.String())
				return
			}
			assert.Equal(t, tt.wantCode, errorCode(t, w))
		})
	}
}

func TestAppHandlerRequiresTheAppToken(t *testing.T) {
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := appHandler("s3cret", slog.New(slog.DiscardHandler), nil, ready)
	apitest.RequireAppToken(t, h, "/payments/x")
}
