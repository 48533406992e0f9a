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
	f := newFixture(t)
	h := routes(slog.New(slog.DiscardHandler), f.catalog, http.NotFoundHandler())
	stock := func() int64 {
		data, ok := f.fake.Value("statestore", "product/p-1")
		if !ok {
			return -1
		}
		var p productRecord
		require.NoError(t, json.Unmarshal(data, &p))
		return p.Stock
	}

	steps := []struct {
		name         string
		method       string
		path         string
		body         string
		wantStatus   int
		wantCode     api.Code // for error answers and internal refusals
		wantLocation string
		wantStock    int64
	}{
		{name: "add", method: http.MethodPost, path: "/products", body: `{"name":"Mug","price_cents":1250,"stock":5}`, wantStatus: http.StatusCreated, wantLocation: "/products/p-1", wantStock: 5},
		{name: "add with unknown field", method: http.MethodPost, path: "/products", body: `{"name":"Mug","price_cents":1,"stock":1,"id":"x"}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest, wantStock: 5},
		{name: "add without stock", method: http.MethodPost, path: "/products", body: `{"name":"Mug","price_cents":1}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest, wantStock: 5},
		{name: "add with fractional price", method: http.MethodPost, path: "/products", body: `{"name":"Mug","price_cents":1.5,"stock":1}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest, wantStock: 5},
		{name: "get", method: http.MethodGet, path: "/products/p-1", wantStatus: http.StatusOK, wantStock: 5},
		{name: "get unknown", method: http.MethodGet, path: "/products/p-9", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound, wantStock: 5},
		{name: "no public reservation", method: http.MethodPost, path: "/products/p-1/reservations", body: `{"order_id":"o-1","quantity":2}`, wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound, wantStock: 5},
		{name: "no public release", method: http.MethodDelete, path: "/products/p-1/reservations/o-1", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound, wantStock: 5},
		{name: "reserve", method: http.MethodPost, path: "/internal/products/p-1/reservations", body: `{"order_id":"o-1","quantity":2}`, wantStatus: http.StatusOK, wantStock: 3},
		{name: "reserve replayed", method: http.MethodPost, path: "/internal/products/p-1/reservations", body: `{"order_id":"o-1","quantity":2}`, wantStatus: http.StatusOK, wantStock: 3},
		{name: "reserve too much", method: http.MethodPost, path: "/internal/products/p-1/reservations", body: `{"order_id":"o-2","quantity":4}`, wantStatus: http.StatusOK, wantCode: api.CodeInsufficientStock, wantStock: 3},
		{name: "reserve bad body", method: http.MethodPost, path: "/internal/products/p-1/reservations", body: `{"order_id":"o-2"`, wantStatus: http.StatusOK, wantCode: api.CodeInvalidRequest, wantStock: 3},
		{name: "release", method: http.MethodDelete, path: "/internal/products/p-1/reservations/o-1", wantStatus: http.StatusOK, wantStock: 5},
		{name: "release again", method: http.MethodDelete, path: "/internal/products/p-1/reservations/o-1", wantStatus: http.StatusOK, wantStock: 5},
		{name: "reserve again", method: http.MethodPost, path: "/internal/products/p-1/reservations", body: `{"order_id":"o-3","quantity":1}`, wantStatus: http.StatusOK, wantStock: 4},
		{name: "confirm", method: http.MethodPost, path: "/internal/products/p-1/reservations/o-3/confirm", wantStatus: http.StatusOK, wantStock: 4},
		{name: "list", method: http.MethodGet, path: "/products", wantStatus: http.StatusOK, wantStock: 4},
		{name: "list bad limit", method: http.MethodGet, path: "/products?limit=0", wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest, wantStock: 4},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(st.method, st.path, strings.NewReader(st.body)))

			assert.Equal(t, st.wantStatus, w.Code, w.Body.String())
			assert.Equal(t, st.wantStock, stock())
			if st.wantLocation != "" {
				assert.Equal(t, st.wantLocation, w.Header().Get("Location"))
			}
			switch {
			case st.wantCode != "" && w.Code == http.StatusOK:
				var ans api.InternalAnswer
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans), w.Body.String())
				require.NotNil(t, ans.Refusal, w.Body.String())
				assert.Equal(t, st.wantCode, ans.Refusal.Code)
			case st.wantCode != "":
				var body api.ErrorBody
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
				assert.Equal(t, st.wantCode, body.Error.Code)
			case strings.HasPrefix(st.path, "/internal/"):
				var ans api.InternalAnswer
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans), w.Body.String())
				assert.Nil(t, ans.Refusal, w.Body.String())
			}
		})
	}
}

func TestListHandlerPages(t *testing.T) {
	f := newFixture(t)
	h := routes(slog.New(slog.DiscardHandler), f.catalog, http.NotFoundHandler())
	for range 3 {
		f.add(t, "Mug", 100, 1)
	}
	get := func(target string) ([]Product, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var ps []Product
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ps))
		return ps, w.Header().Get(NextCursorHeader)
	}

	first, next := get("/products?limit=2")
	require.NotEmpty(t, next)
	second, last := get("/products?limit=2&cursor=" + next)

	assert.Len(t, first, 2)
	assert.Len(t, second, 1)
	assert.Empty(t, last, "no cursor on the last page")
	assert.NotEqual(t, first[0].ID, second[0].ID)
}
