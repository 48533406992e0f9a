package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// newFuzzCatalog returns the products routes over a catalogue holding p-1
// (1250 cents, 10 in stock, of which order o-held holds 2) and p-2 (out of
// stock).
func newFuzzCatalog(t *testing.T) (http.Handler, *fixture) {
	t.Helper()
	f := newFixture(t)
	p1 := f.add(t, "Mug", 1250, 10)
	f.add(t, "Plate", 800, 0)
	_, _, err := f.catalog.Reserve(t.Context(), p1.ID, ReservationRequest{OrderID: "o-held", Quantity: ptr(int64(2))})
	require.NoError(t, err)
	return routes(slog.New(slog.DiscardHandler), f.catalog, http.NotFoundHandler()), f
}

// post sends a POST with body to target, which may be anything a client
// puts on the request line.
func post(t *testing.T, h http.Handler, target string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", bytes.NewReader(body))
	u, err := url.ParseRequestURI(target)
	require.NoError(t, err)
	r.URL, r.RequestURI = u, target
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// requireJSONAnswer checks the properties every answer has: no 5xx, and a
// JSON body (an error body for a 4xx). The router's redirect of an unclean
// path is the one answer without a body.
func requireJSONAnswer(t *testing.T, w *httptest.ResponseRecorder, requestPath string) {
	t.Helper()
	require.Less(t, w.Code, 500, w.Body.String())
	if w.Code == http.StatusMovedPermanently {
		require.NotEqual(t, path.Clean(requestPath), requestPath, "only an unclean path is redirected")
		return
	}
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.True(t, json.Valid(w.Body.Bytes()), "the body is JSON: %q", w.Body.String())
	if w.Code >= 400 {
		var e api.ErrorBody
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
		require.NotEmpty(t, e.Error.Code, w.Body.String())
	}
}

// FuzzAddProductHandler posts any body to POST /products. The answer is 201
// or 400 with JSON, never a 5xx; a 400 leaves the store as it was, and a 201
// adds exactly the product it answers, listed last in the index.
func FuzzAddProductHandler(f *testing.F) {
	for _, body := range []string{
		`{"name":"Teapot","price_cents":2500,"stock":3}`,
		`{"name":" Teapot ","price_cents":1,"stock":0}`,
		`{"name":"Teapot","price_cents":100000000,"stock":1000000000}`,
		`{"name":"Teapot","price_cents":100000001,"stock":1}`,
		`{"name":"Teapot","price_cents":1,"stock":1000000001}`,
		`{"name":"Teapot","price_cents":0,"stock":1}`,
		`{"name":"Teapot","price_cents":-1,"stock":1}`,
		`{"name":"Teapot","price_cents":1,"stock":-1}`,
		`{"name":"Teapot","price_cents":1.5,"stock":1}`,
		`{"name":"Teapot","price_cents":"1","stock":1}`,
		`{"name":"Teapot","price_cents":9223372036854775808,"stock":1}`,
		`{"name":"Teapot","price_cents":1e2,"stock":1}`,
		`{"name":"Teapot","price_cents":null,"stock":1}`,
		`{"name":"Teapot","stock":1}`,
		`{"name":"Teapot","price_cents":1}`,
		`{"price_cents":1,"stock":1}`,
		`{"name":"","price_cents":1,"stock":1}`,
		`{"name":"` + strings.Repeat("n", 201) + `","price_cents":1,"stock":1}`,
		`{"name":"` + strings.Repeat("ü", 200) + `","price_cents":1,"stock":1}`,
		`{"name":"Teapot","price_cents":1,"stock":1,"id":"p-1"}`,
		`{"name":"Teapot","price_cents":1,"stock":1}{}`,
		`[{"name":"Teapot","price_cents":1,"stock":1}]`,
		`null`,
		`{}`,
		``,
		`{"name":`,
		"{\"name\":\"\xff\xfe\",\"price_cents\":1,\"stock\":1}",
		`{"name":"Teapot","price_cents":1,"stock":1` + strings.Repeat(" ", api.MaxBodyBytes) + `}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, fx := newFuzzCatalog(t)
		before := fx.snapshot()
		listedBefore, err := fx.catalog.List(t.Context(), "100", "")
		require.NoError(t, err)

		w := post(t, h, "/products", body)

		requireJSONAnswer(t, w, "/products")
		require.Contains(t, []int{http.StatusCreated, http.StatusBadRequest}, w.Code, w.Body.String())
		after := fx.snapshot()
		if w.Code != http.StatusCreated {
			assert.Empty(t, w.Header().Get("Location"))
			assert.Equal(t, before, after, "a refused product leaves the store as it was")
			return
		}
		var p Product
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
		assert.Equal(t, "/products/"+p.ID, w.Header().Get("Location"))
		assert.Equal(t, productRecord{Product: p}, fx.record(t, p.ID), "the stored product is the one answered")
		listed, err := fx.catalog.List(t.Context(), "100", "")
		require.NoError(t, err)
		assert.Equal(t, append(slices.Clone(listedBefore.Items), p), listed.Items, "listed last")
		for k, v := range before {
			if k != catalogHeadKey && !strings.HasPrefix(k, "catalog/") {
				assert.Equal(t, v, after[k], "%s unchanged", k)
			}
		}
		assert.True(t, p.PriceCents >= 1 && p.PriceCents <= maxPriceCents, "price %d", p.PriceCents)
		assert.True(t, p.Stock >= 0 && p.Stock <= maxStock, "stock %d", p.Stock)
		assert.NotEmpty(t, strings.TrimSpace(p.Name))
	})
}

// FuzzReserveHandler posts any body to POST /internal/products/{id}/reservations
// with any product id. The answer is never a 5xx and always JSON; a refusal
// leaves the store as it was; a new reservation takes exactly the quantity
// answered from the product's stock, as a hold of that order; a replay
// changes nothing.
func FuzzReserveHandler(f *testing.F) {
	seeds := []struct{ productID, body string }{
		{"p-1", `{"order_id":"o-1","quantity":2}`},
		{"p-1", `{"order_id":"o-1","quantity":8}`},
		{"p-1", `{"order_id":"o-1","quantity":9}`},
		{"p-1", `{"order_id":"o-held","quantity":2}`},
		{"p-1", `{"order_id":"o-held","quantity":1}`},
		{"p-2", `{"order_id":"o-held","quantity":2}`},
		{"p-2", `{"order_id":"o-1","quantity":1}`},
		{"p-9", `{"order_id":"o-1","quantity":1}`},
		{"p-1", `{"order_id":"o-1","quantity":0}`},
		{"p-1", `{"order_id":"o-1","quantity":-1}`},
		{"p-1", `{"order_id":"o-1","quantity":10001}`},
		{"p-1", `{"order_id":"o-1","quantity":1.5}`},
		{"p-1", `{"order_id":"o-1","quantity":"1"}`},
		{"p-1", `{"order_id":"o-1","quantity":9223372036854775807}`},
		{"p-1", `{"order_id":"o-1"}`},
		{"p-1", `{"quantity":1}`},
		{"p-1", `{"order_id":"","quantity":1}`},
		{"p-1", `{"order_id":"o/1","quantity":1}`},
		{"p-1", `{"order_id":"` + strings.Repeat("o", 65) + `","quantity":1}`},
		{"p-1", `{"order_id":"o-1","quantity":1,"product_id":"p-2"}`},
		{"p-1", `null`},
		{"p-1", ``},
		{"p-1", `{"order_id":`},
		{"p-1", `[]`},
		{"p%2F1", `{"order_id":"o-1","quantity":1}`},
		{"p.1", `{"order_id":"o-1","quantity":1}`},
		{"..", `{"order_id":"o-1","quantity":1}`},
		{"%2e%2e", `{"order_id":"o-1","quantity":1}`},
		{"", `{"order_id":"o-1","quantity":1}`},
		{strings.Repeat("p", 65), `{"order_id":"o-1","quantity":1}`},
		{"p-1?x=1", `{"order_id":"o-1","quantity":1}`},
		{"\xff", `{"order_id":"o-1","quantity":1}`},
	}
	for _, s := range seeds {
		f.Add(s.productID, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, productID string, body []byte) {
		target := "/internal/products/" + productID + "/reservations"
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(target, " \t\r\n") {
			return // no server reads such a request line
		}
		h, fx := newFuzzCatalog(t)
		before := fx.snapshot()
		stockBefore := map[string]int64{"p-1": fx.record(t, "p-1").Stock, "p-2": fx.record(t, "p-2").Stock}

		w := post(t, h, target, body)

		requireJSONAnswer(t, w, u.Path)
		after := fx.snapshot()
		assert.Equal(t, slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)), "no key comes or goes")
		if w.Code != http.StatusOK {
			assert.Equal(t, before, after, "a refused reservation leaves the store as it was")
			return
		}
		var ans api.InternalAnswer
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
		if ans.Refusal != nil {
			assert.Equal(t, before, after, "a refused reservation leaves the store as it was")
			return
		}
		var got ReservationAnswer
		require.NoError(t, json.Unmarshal(ans.Result, &got))
		res := got.Reservation
		if got.Replayed {
			assert.Equal(t, before, after, "a replay changes nothing")
			return
		}
		assert.Equal(t, reservationReserved, res.Status)
		rec := fx.record(t, res.ProductID)
		assert.Equal(t, stockBefore[res.ProductID]-res.Quantity, rec.Stock, "the stock taken is the quantity answered")
		assert.GreaterOrEqual(t, rec.Stock, int64(0), "never oversold")
		assert.Equal(t, Hold{Quantity: res.Quantity, PriceCents: res.PriceCents, At: res.CreatedAt}, rec.Holds[res.OrderID])
	})
}
