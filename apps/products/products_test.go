package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

var testNow = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

// testClock is a settable clock shared by the catalogue under test.
type testClock struct{ t atomic.Pointer[time.Time] }

func newTestClock() *testClock {
	c := &testClock{}
	c.set(testNow)
	return c
}
func (c *testClock) now() time.Time      { return *c.t.Load() }
func (c *testClock) set(t time.Time)     { c.t.Store(&t) }
func (c *testClock) add(d time.Duration) { c.set(c.now().Add(d)) }

// fixture is a Catalog over the real adapter (stateCatalog) and a fake
// sidecar with Redis's semantics, as products runs on statestore.
type fixture struct {
	catalog *Catalog
	store   stateCatalog
	fake    *sidecartest.Sidecar
	clock   *testClock
	steps   []string
}

// newFixture returns a fixture with ids p-1, p-2, ...
func newFixture(t *testing.T) *fixture {
	t.Helper()
	fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "statestore", Flavor: sidecartest.FlavorRedis}})
	client, err := sidecar.Connect(fake.Address, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(client.Close)
	f := &fixture{store: stateCatalog{sidecar.NewStore(client, "statestore")}, fake: fake, clock: newTestClock()}
	var n atomic.Int64
	f.catalog = NewCatalog(f.store, f.clock.now, func() string { return fmt.Sprintf("p-%d", n.Add(1)) }, func(s string) { f.steps = append(f.steps, s) })
	return f
}

// replica is a second Catalog over the same store, as another replica of
// products is.
func (f *fixture) replica() *Catalog {
	return NewCatalog(f.store, f.clock.now, func() string { return "other" }, nil)
}

// add adds a product with the given stock and returns it.
func (f *fixture) add(t *testing.T, name string, price, stock int64) Product {
	t.Helper()
	p, err := f.catalog.Add(t.Context(), NewProduct{Name: name, PriceCents: &price, Stock: &stock})
	require.NoError(t, err)
	return p
}

// record reads a product as stored.
func (f *fixture) record(t *testing.T, id string) productRecord {
	t.Helper()
	data, ok := f.fake.Value("statestore", "product/"+id)
	require.True(t, ok, "product %s stored", id)
	var p productRecord
	require.NoError(t, json.Unmarshal(data, &p))
	return p
}

// snapshot is every key and value of the store.
func (f *fixture) snapshot() map[string]string {
	out := map[string]string{}
	for _, k := range f.fake.Keys("statestore") {
		v, _ := f.fake.Value("statestore", k)
		out[k] = string(v)
	}
	return out
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
			f := newFixture(t)

			_, err := f.catalog.Add(t.Context(), tt.in)

			e := apitest.RequireCode(t, err, api.CodeInvalidRequest)
			assert.Contains(t, e.Message, tt.wantMessage)
			assert.Empty(t, f.snapshot(), "nothing written")
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
			f := newFixture(t)

			p, err := f.catalog.Add(t.Context(), tt.in)

			require.NoError(t, err)
			tt.want.ID, tt.want.CreatedAt = "p-1", testNow
			assert.Equal(t, tt.want, p)
			got, err := f.catalog.Get(t.Context(), p.ID)
			require.NoError(t, err)
			assert.Equal(t, p, got)
			page, err := f.catalog.List(t.Context(), "", "")
			require.NoError(t, err)
			assert.Equal(t, []Product{p}, page.Items, "the product is listed")
			assert.Equal(t, []string{StepCatalogPositionClaimed, StepCatalogEntryWritten}, f.steps)
		})
	}
}

// A process killed between the steps of Add leaves no product unlisted: the
// catalogue entry comes first, and listing skips an entry without a product
// (or a position without an entry).
func TestAddInterruptedLeavesNoUnlistedProduct(t *testing.T) {
	f := newFixture(t)
	first := f.add(t, "First", 100, 1)
	// Killed after claiming a position: nothing else written.
	_, err := f.store.ClaimCatalogPosition(t.Context())
	require.NoError(t, err)
	// Killed after writing the entry: no product under it.
	pos, err := f.store.ClaimCatalogPosition(t.Context())
	require.NoError(t, err)
	require.NoError(t, f.store.SetCatalogEntry(t.Context(), pos, "p-never-stored"))
	last := f.add(t, "Last", 100, 1)

	page, err := f.catalog.List(t.Context(), "", "")

	require.NoError(t, err)
	assert.Equal(t, []Product{first, last}, page.Items)
	assert.Empty(t, page.Next)
}

func TestListPages(t *testing.T) {
	f := newFixture(t)
	var all []Product
	for i := range 2*catalogPageSize + 5 { // across catalogue pages
		all = append(all, f.add(t, "Item "+strconv.Itoa(i), 100, 1))
	}

	var got []Product
	cursor, pages := "", 0
	for {
		page, err := f.catalog.List(t.Context(), "20", cursor)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Items), 20)
		got = append(got, page.Items...)
		pages++
		if page.Next == "" {
			break
		}
		cursor = page.Next
		require.Less(t, pages, 100, "paging ends")
	}

	assert.Equal(t, all, got, "every product once, in the order added")
	assert.Equal(t, 11, pages)
	page, err := f.catalog.List(t.Context(), "", "")
	require.NoError(t, err)
	assert.Len(t, page.Items, defaultPageLimit)
	assert.NotEmpty(t, page.Next)
}

func TestListRefusesBadPaging(t *testing.T) {
	tests := []struct{ limit, cursor string }{
		{"0", ""}, {"101", ""}, {"-1", ""}, {"x", ""}, {"1.5", ""},
		{"", "x"}, {"", "-1"}, {"", "1e3"},
	}
	for _, tt := range tests {
		t.Run(tt.limit+"/"+tt.cursor, func(t *testing.T) {
			f := newFixture(t)
			_, err := f.catalog.List(t.Context(), tt.limit, tt.cursor)
			apitest.RequireCode(t, err, api.CodeInvalidRequest)
		})
	}
}

func TestListStoreDown(t *testing.T) {
	f := newFixture(t)
	f.add(t, "Mug", 100, 1)
	f.fake.SetFault(func(sidecartest.Call) sidecartest.Fault {
		return sidecartest.Fault{Err: fmt.Errorf("store down")}
	})

	_, err := f.catalog.List(t.Context(), "", "")

	assert.ErrorIs(t, err, api.ErrUnavailable)
}

func TestGet(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 1)
	tests := []struct {
		name     string
		id       string
		wantCode api.Code
	}{
		{"known", p.ID, ""},
		{"unknown", "p-9", api.CodeNotFound},
		{"invalid id", "p/1", api.CodeNotFound},
		{"too long", strings.Repeat("p", 65), api.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.catalog.Get(t.Context(), tt.id)
			if tt.wantCode != "" {
				apitest.RequireCode(t, err, tt.wantCode)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, p, got)
		})
	}
}

// The public product never shows the holds of orders.
func TestProductJSONHidesHolds(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 3)
	_, _, err := f.catalog.Reserve(t.Context(), p.ID, ReservationRequest{OrderID: "o-1", Quantity: ptr[int64](1)})
	require.NoError(t, err)

	got, err := f.catalog.Get(t.Context(), p.ID)
	require.NoError(t, err)
	data, err := json.Marshal(got)
	require.NoError(t, err)

	assert.NotContains(t, string(data), "o-1")
	assert.NotContains(t, string(data), "holds")
}
