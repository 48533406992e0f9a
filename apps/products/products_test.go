package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
)

var testNow = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

// newTestCatalog returns a Catalog over a fresh fake store, with a fixed
// clock, ids p-1, p-2, ... and retries that do not wait.
func newTestCatalog(t *testing.T) (*Catalog, *fakeStore) {
	t.Helper()
	store := newFakeStore()
	var n atomic.Int64
	c := NewCatalog(store, func() time.Time { return testNow }, func() string { return fmt.Sprintf("p-%d", n.Add(1)) })
	c.backoff = 0
	return c, store
}

// addProduct adds a product with the given stock and returns it.
func addProduct(t *testing.T, c *Catalog, name string, price, stock int64) Product {
	t.Helper()
	p, err := c.Add(t.Context(), NewProduct{Name: name, PriceCents: &price, Stock: &stock})
	require.NoError(t, err)
	return p
}

func ptr[T any](v T) *T { return &v }

func TestAddValidation(t *testing.T) {
	tests := []struct {
		name        string
		in          NewProduct
		wantMessage string
	}{
		{"missing name", NewProduct{PriceCents: ptr[int64](100), Stock: ptr[int64](1)}, "name is required"},
		{"blank name", NewProduct{Name: "  ", PriceCents: ptr[int64](100), Stock: ptr[int64](1)}, "name is required"},
		{"name too long", NewProduct{Name: strings.Repeat("ü", maxNameLen+1), PriceCents: ptr[int64](100), Stock: ptr[int64](1)}, "name is longer"},
		{"missing price", NewProduct{Name: "Mug", Stock: ptr[int64](1)}, "price_cents is required"},
		{"zero price", NewProduct{Name: "Mug", PriceCents: ptr[int64](0), Stock: ptr[int64](1)}, "price_cents must be"},
		{"negative price", NewProduct{Name: "Mug", PriceCents: ptr[int64](-5), Stock: ptr[int64](1)}, "price_cents must be"},
		{"price too high", NewProduct{Name: "Mug", PriceCents: ptr[int64](maxPriceCents + 1), Stock: ptr[int64](1)}, "price_cents must be"},
		{"missing stock", NewProduct{Name: "Mug", PriceCents: ptr[int64](100)}, "stock is required"},
		{"negative stock", NewProduct{Name: "Mug", PriceCents: ptr[int64](100), Stock: ptr[int64](-1)}, "stock must be"},
		{"stock too high", NewProduct{Name: "Mug", PriceCents: ptr[int64](100), Stock: ptr[int64](maxStock + 1)}, "stock must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)

			_, err := c.Add(t.Context(), tt.in)

			e := apitest.RequireCode(t, err, api.CodeInvalidRequest)
			assert.Contains(t, e.Message, tt.wantMessage)
			assert.Zero(t, store.callCount("InsertProduct"))
			assert.Zero(t, store.callCount("SaveIndex"))
		})
	}
}

func TestAdd(t *testing.T) {
	tests := []struct {
		name string
		in   NewProduct
		want Product
	}{
		{"plain", NewProduct{Name: "Mug", PriceCents: ptr[int64](1250), Stock: ptr[int64](7)},
			Product{Name: "Mug", PriceCents: 1250, Stock: 7}},
		{"name is trimmed", NewProduct{Name: "  Mug \n", PriceCents: ptr[int64](1), Stock: ptr[int64](0)},
			Product{Name: "Mug", PriceCents: 1, Stock: 0}},
		{"limits are allowed", NewProduct{Name: strings.Repeat("ü", maxNameLen), PriceCents: ptr[int64](maxPriceCents), Stock: ptr[int64](maxStock)},
			Product{Name: strings.Repeat("ü", maxNameLen), PriceCents: maxPriceCents, Stock: maxStock}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)

			p, err := c.Add(t.Context(), tt.in)

			require.NoError(t, err)
			tt.want.ID, tt.want.CreatedAt = "p-1", testNow
			assert.Equal(t, tt.want, p)
			got, err := c.Get(t.Context(), p.ID)
			require.NoError(t, err)
			assert.Equal(t, p, got)
			ids, _, err := store.Index(t.Context())
			require.NoError(t, err)
			assert.Equal(t, []string{"p-1"}, ids, "the product is indexed")
		})
	}
}

func TestAddIndexFailure(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		failures  int
		err       error
		wantCode  api.Code // "" when the store's error comes back as is
		wantIs    error
		wantSaves int
	}{
		{name: "index unreadable", method: "Index", failures: 1, err: api.ErrUnavailable, wantIs: api.ErrUnavailable, wantSaves: 0},
		{name: "index unwritable", method: "SaveIndex", failures: 1, err: api.ErrUnavailable, wantIs: api.ErrUnavailable, wantSaves: 1},
		{name: "index contended past the attempts", method: "SaveIndex", failures: 3, err: ErrConflict, wantCode: api.CodeConflict, wantSaves: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)
			c.attempts = 3
			store.failNext(tt.method, tt.failures, tt.err)

			_, err := c.Add(t.Context(), NewProduct{Name: "Mug", PriceCents: ptr[int64](100), Stock: ptr[int64](1)})

			if tt.wantCode != "" {
				apitest.RequireCode(t, err, tt.wantCode)
			} else {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			assert.Equal(t, tt.wantSaves, store.callCount("SaveIndex"))
			_, err = c.Get(t.Context(), "p-1")
			apitest.RequireCode(t, err, api.CodeNotFound) // no half-added product
		})
	}
}

func TestAddRetriesIndexConflicts(t *testing.T) {
	c, store := newTestCatalog(t)
	c.attempts = 3
	first := addProduct(t, c, "Mug", 100, 1)
	store.failNext("SaveIndex", 2, ErrConflict)

	second, err := c.Add(t.Context(), NewProduct{Name: "Plate", PriceCents: ptr[int64](200), Stock: ptr[int64](2)})

	require.NoError(t, err)
	ids, _, err := store.Index(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{first.ID, second.ID}, ids)
}

func TestList(t *testing.T) {
	store := newFakeStore()
	// Ids whose sort order is not the creation order.
	ids := []string{"zz", "aa", "mm", "b1", "a2"}
	var n atomic.Int64
	c := NewCatalog(store, func() time.Time { return testNow }, func() string { return ids[n.Add(1)-1] })
	c.backoff = 0

	empty, err := c.List(t.Context())
	require.NoError(t, err)
	assert.Empty(t, empty, "an empty catalogue lists nothing")

	var want []Product
	for i := range ids {
		want = append(want, addProduct(t, c, fmt.Sprintf("item %d", i), int64(100+i), int64(i)))
	}

	got, err := c.List(t.Context())

	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestListStoreDown(t *testing.T) {
	tests := []string{"Index", "Products"}
	for _, method := range tests {
		t.Run(method, func(t *testing.T) {
			c, store := newTestCatalog(t)
			addProduct(t, c, "Mug", 100, 1)
			store.failNext(method, 1, api.ErrUnavailable)

			_, err := c.List(t.Context())

			assert.ErrorIs(t, err, api.ErrUnavailable)
		})
	}
}

func TestGet(t *testing.T) {
	c, store := newTestCatalog(t)
	mug := addProduct(t, c, "Mug", 100, 1)

	tests := []struct {
		name     string
		id       string
		fail     error
		wantCode api.Code
		wantIs   error
	}{
		{name: "known", id: mug.ID},
		{name: "unknown", id: "p-404", wantCode: api.CodeNotFound},
		{name: "invalid id", id: "p/1", wantCode: api.CodeNotFound},
		{name: "store down", id: mug.ID, fail: api.ErrUnavailable, wantIs: api.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fail != nil {
				store.failNext("Product", 1, tt.fail)
			}

			got, err := c.Get(t.Context(), tt.id)

			switch {
			case tt.wantCode != "":
				apitest.RequireCode(t, err, tt.wantCode)
			case tt.wantIs != nil:
				assert.ErrorIs(t, err, tt.wantIs)
			default:
				require.NoError(t, err)
				assert.Equal(t, mug, got)
			}
		})
	}
}

// The fake must behave like the real store for the tests above to mean
// anything: this pins its ETag semantics.
func TestFakeStoreETags(t *testing.T) {
	ctx := context.Background()
	s := newFakeStore()
	require.NoError(t, s.InsertProduct(ctx, Product{ID: "p", Stock: 1}))
	assert.ErrorIs(t, s.InsertProduct(ctx, Product{ID: "p"}), ErrConflict, "insert over an existing key")

	p, etag, err := s.Product(ctx, "p")
	require.NoError(t, err)
	p.Stock = 2
	require.NoError(t, s.UpdateProduct(ctx, p, etag))
	assert.ErrorIs(t, s.UpdateProduct(ctx, p, etag), ErrConflict, "update with a stale etag")
	assert.ErrorIs(t, s.UpdateProduct(ctx, Product{ID: "missing"}, "1"), ErrConflict)

	require.NoError(t, s.SaveIndex(ctx, []string{"p"}, ""))
	assert.ErrorIs(t, s.SaveIndex(ctx, []string{"q"}, ""), ErrConflict, "a second first index")

	require.NoError(t, s.InsertReservation(ctx, Reservation{OrderID: "o"}))
	_, retag, err := s.Reservation(ctx, "o")
	require.NoError(t, err)
	require.NoError(t, s.UpdateReservation(ctx, Reservation{OrderID: "o", Status: reservationReserved}, retag))
	assert.ErrorIs(t, s.DeleteReservation(ctx, "o", retag), ErrConflict, "delete with a stale etag")
	require.NoError(t, s.DeleteReservation(ctx, "o", ""))
	assert.ErrorIs(t, s.DeleteReservation(ctx, "o", retag), ErrConflict, "conditional delete of a deleted key")
	assert.NoError(t, s.DeleteReservation(ctx, "o", ""), "unconditional deletes are idempotent")

	s.failNext("Product", 1, api.ErrUnavailable)
	_, _, err = s.Product(ctx, "p")
	assert.ErrorIs(t, err, api.ErrUnavailable)
	_, _, err = s.Product(ctx, "p")
	assert.NoError(t, err, "a fault fires only as often as asked")
}
