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

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// The steps run in order against one catalogue: each row depends on the ones
// before it, as a client's calls would.
func TestHandlers(t *testing.T) {
	c, store := newTestCatalog(t)
	h := routes(slog.New(slog.DiscardHandler), c, http.NotFoundHandler())

	steps := []struct {
		name         string
		method       string
		path         string
		body         string
		wantStatus   int
		wantCode     api.Code // for error answers
		wantLocation string
		wantStock    int64
	}{
		{name: "add", method: http.MethodPost, path: "/products", body: `{"name":"Mug","price_cents":1250,"stock":5}`, wantStatus: http.StatusCreated, wantLocation: "/products/p-1", wantStock: 5},
		{name: "add with unknown field", method: http.MethodPost, path: "/products", body: `{"name":"Mug","price_cents":1,"stock":1,"id":"x"}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest, wantStock: 5},
		{name: "add without stock", method: http.MethodPost, path: "/products", body: `{"name":"Mug","price_cents":1}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest, wantStock: 5},
		{name: "add with fractional price", method: http.MethodPost, path: "/products", body: `{"name":"Mug","price_cents":1.5,"stock":1}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest, wantStock: 5},
		{name: "get", method: http.MethodGet, path: "/products/p-1", wantStatus: http.StatusOK, wantStock: 5},
		{name: "get unknown", method: http.MethodGet, path: "/products/p-9", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound, wantStock: 5},
		{name: "reserve", method: http.MethodPost, path: "/products/p-1/reservations", body: `{"order_id":"o-1","quantity":2}`, wantStatus: http.StatusCreated, wantStock: 3},
		{name: "reserve replayed", method: http.MethodPost, path: "/products/p-1/reservations", body: `{"order_id":"o-1","quantity":2}`, wantStatus: http.StatusOK, wantStock: 3},
		{name: "reserve same order, other quantity", method: http.MethodPost, path: "/products/p-1/reservations", body: `{"order_id":"o-1","quantity":1}`, wantStatus: http.StatusUnprocessableEntity, wantCode: api.CodeUnprocessable, wantStock: 3},
		{name: "reserve too much", method: http.MethodPost, path: "/products/p-1/reservations", body: `{"order_id":"o-2","quantity":4}`, wantStatus: http.StatusConflict, wantCode: api.CodeInsufficientStock, wantStock: 3},
		{name: "reserve unknown product", method: http.MethodPost, path: "/products/p-9/reservations", body: `{"order_id":"o-3","quantity":1}`, wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound, wantStock: 3},
		{name: "release", method: http.MethodDelete, path: "/products/p-1/reservations/o-1", wantStatus: http.StatusNoContent, wantStock: 5},
		{name: "release again", method: http.MethodDelete, path: "/products/p-1/reservations/o-1", wantStatus: http.StatusNoContent, wantStock: 5},
		{name: "list", method: http.MethodGet, path: "/products", wantStatus: http.StatusOK, wantStock: 5},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(st.method, st.path, strings.NewReader(st.body)))

			assert.Equal(t, st.wantStatus, w.Code, w.Body.String())
			assert.Equal(t, st.wantStock, store.stock("p-1"))
			if st.wantLocation != "" {
				assert.Equal(t, st.wantLocation, w.Header().Get("Location"))
			}
			if st.wantCode != "" {
				var body api.ErrorBody
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
				assert.Equal(t, st.wantCode, body.Error.Code)
			}
			if st.wantStatus == http.StatusNoContent {
				assert.Empty(t, w.Body.String())
			}
		})
	}
}
