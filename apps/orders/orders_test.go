package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

// fakeUsers is a UserDirectory over a set of ids.
type fakeUsers struct {
	ids   map[string]bool
	err   error // returned instead of looking up
	calls int
}

func (u *fakeUsers) CheckUser(_ context.Context, id string) error {
	u.calls++
	if u.err != nil {
		return u.err
	}
	if !u.ids[id] {
		return fmt.Errorf("users answered 404: %w", ErrUnknownUser)
	}
	return nil
}

// reservation is one call of fakeCatalog.
type reservation struct {
	productID, orderID string
	quantity           int64
}

// product is what fakeCatalog knows of a product.
type product struct {
	ID         string
	PriceCents int64
	Stock      int64
}

// fakeCatalog is a Catalog over a map of products that records its calls;
// its stock and holds move like the real ones'.
type fakeCatalog struct {
	mu         sync.Mutex
	products   map[string]product
	reserveErr error // returned by Reserve instead of reserving
	releaseErr error // returned by Release after recording it
	confirmErr error // returned by Confirm after recording it
	reserved   map[string]reservation
	confirmed  map[string]bool
	reserves   []reservation
	releases   []reservation
	confirms   []reservation
	releaseCtx []error // ctx.Err() of each Release call
	onReserve  func()  // runs after a successful Reserve
}

func (c *fakeCatalog) Reserve(_ context.Context, productID, orderID string, quantity int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := reservation{productID, orderID, quantity}
	c.reserves = append(c.reserves, r)
	if c.reserveErr != nil {
		return 0, c.reserveErr
	}
	p, ok := c.products[productID]
	switch {
	case !ok:
		return 0, ErrUnknownProduct
	case p.Stock < quantity:
		return 0, ErrInsufficientStock
	}
	p.Stock -= quantity
	c.products[productID] = p
	c.reserved[orderID] = r
	if c.onReserve != nil {
		c.onReserve()
	}
	return p.PriceCents, nil
}

func (c *fakeCatalog) Confirm(_ context.Context, productID, orderID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.confirms = append(c.confirms, reservation{productID: productID, orderID: orderID})
	if c.confirmErr != nil {
		return c.confirmErr
	}
	if _, ok := c.reserved[orderID]; ok {
		c.confirmed[orderID] = true
	}
	return nil
}

func (c *fakeCatalog) Release(ctx context.Context, productID, orderID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releases = append(c.releases, reservation{productID: productID, orderID: orderID})
	c.releaseCtx = append(c.releaseCtx, ctx.Err())
	if c.releaseErr != nil {
		return c.releaseErr
	}
	if r, ok := c.reserved[orderID]; ok && r.productID == productID && !c.confirmed[orderID] {
		p := c.products[productID]
		p.Stock += r.quantity
		c.products[productID] = p
		delete(c.reserved, orderID)
	}
	return nil
}

// fakeOrders is the real OrderStore adapter (stateOrders) over a fake
// sidecar with PostgreSQL's semantics and orderstore's outbox.
type fakeOrders struct {
	stateOrders
	fake *sidecartest.Sidecar
}

func newFakeOrders(t *testing.T) *fakeOrders {
	t.Helper()
	fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "orderstore", Flavor: sidecartest.FlavorPostgreSQL, Outbox: "orders"}})
	client, err := sidecar.Connect(fake.Address, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(client.Close)
	return &fakeOrders{stateOrders: stateOrders{sidecar.NewStore(client, "orderstore")}, fake: fake}
}

// all returns every stored order by id.
func (s *fakeOrders) all(t *testing.T) map[string]Order {
	t.Helper()
	out := map[string]Order{}
	for _, k := range s.fake.Keys("orderstore") {
		if !strings.HasPrefix(k, "order/") {
			continue
		}
		data, _ := s.fake.Value("orderstore", k)
		var r orderRecord
		require.NoError(t, json.Unmarshal(data, &r))
		out[r.ID] = r.Order
	}
	return out
}

// raw returns every stored key and value as stored.
func (s *fakeOrders) raw() map[string]string {
	out := map[string]string{}
	for _, k := range s.fake.Keys("orderstore") {
		v, _ := s.fake.Value("orderstore", k)
		out[k] = string(v)
	}
	return out
}

// events returns the events the outbox published.
func (s *fakeOrders) events(t *testing.T) []Event {
	t.Helper()
	var out []Event
	for _, e := range s.fake.Published() {
		var ev Event
		require.NoError(t, json.Unmarshal(e.Data, &ev))
		out = append(out, ev)
	}
	return out
}

// failTransactions makes every transaction fail with err, before it is
// applied or, with afterApply, after (the answer lost).
func (s *fakeOrders) failTransactions(err error, afterApply bool) {
	s.fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "ExecuteStateTransaction" {
			return sidecartest.Fault{Err: err, AfterApply: afterApply}
		}
		return sidecartest.Fault{}
	})
}

var testNow = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

type deskFakes struct {
	users   *fakeUsers
	catalog *fakeCatalog
	orders  *fakeOrders
	clock   *atomic.Pointer[time.Time]
	steps   *[]string
}

// newTestDesk returns a Desk knowing user u-1 and product p-1 (1250 cents,
// 10 in stock), whose next order id is o-1 (then o-2, ...).
func newTestDesk(t *testing.T) (*Desk, deskFakes) {
	t.Helper()
	clock := &atomic.Pointer[time.Time]{}
	now := testNow
	clock.Store(&now)
	f := deskFakes{
		users: &fakeUsers{ids: map[string]bool{"u-1": true}},
		catalog: &fakeCatalog{
			products:  map[string]product{"p-1": {ID: "p-1", PriceCents: 1250, Stock: 10}},
			reserved:  map[string]reservation{},
			confirmed: map[string]bool{},
		},
		orders: newFakeOrders(t),
		clock:  clock,
		steps:  &[]string{},
	}
	var n atomic.Int64
	var mu sync.Mutex
	d := &Desk{
		Users:   f.users,
		Catalog: f.catalog,
		Orders:  f.orders,
		Now:     func() time.Time { return *clock.Load() },
		NewID:   func() string { return fmt.Sprintf("o-%d", n.Add(1)) },
		Step: func(s string) {
			mu.Lock()
			defer mu.Unlock()
			*f.steps = append(*f.steps, s)
		},
	}
	return d, f
}

// advance moves the desk's clock on.
func (f deskFakes) advance(d time.Duration) {
	now := f.clock.Load().Add(d)
	f.clock.Store(&now)
}

// place places one unit of p-1 for u-1.
func place(t *testing.T, d *Desk) Order {
	t.Helper()
	o, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr(int64(1))})
	require.NoError(t, err)
	return o
}

func ptr[T any](v T) *T { return &v }

func TestPlaceValidation(t *testing.T) {
	tests := []struct {
		name        string
		in          NewOrder
		wantMessage string
	}{
		{"empty order", NewOrder{}, "user_id is required"},
		{"missing user", NewOrder{ProductID: "p-1", Quantity: ptr[int64](1)}, "user_id is required"},
		{"bad user id", NewOrder{UserID: "u/1", ProductID: "p-1", Quantity: ptr[int64](1)}, "user_id must be"},
		{"overlong user id", NewOrder{UserID: strings.Repeat("u", 65), ProductID: "p-1", Quantity: ptr[int64](1)}, "user_id must be"},
		{"missing product", NewOrder{UserID: "u-1", Quantity: ptr[int64](1)}, "product_id is required"},
		{"bad product id", NewOrder{UserID: "u-1", ProductID: "p||1", Quantity: ptr[int64](1)}, "product_id must be"},
		{"missing quantity", NewOrder{UserID: "u-1", ProductID: "p-1"}, "quantity is required"},
		{"zero quantity", NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](0)}, "quantity must be"},
		{"negative quantity", NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](-2)}, "quantity must be"},
		{"quantity too large", NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](maxQuantity + 1)}, "quantity must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)

			_, err := d.Place(t.Context(), tt.in)

			e := apitest.RequireCode(t, err, api.CodeInvalidRequest)
			assert.Equal(t, 400, e.Code.Status())
			assert.Contains(t, e.Message, tt.wantMessage)
			assert.Zero(t, f.users.calls, "an invalid order reaches no service")
			assert.Empty(t, f.catalog.reserves)
		})
	}
}

func TestPlace(t *testing.T) {
	tests := []struct {
		name      string
		qty       int64
		price     int64
		wantTotal int64
	}{
		{"one unit", 1, 1250, 1250},
		{"several units", 3, 1250, 3750},
		{"all the stock", 10, 999, 9990},
		{"largest order of the dearest product", maxQuantity, 100_000_000, 1_000_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			f.catalog.products["p-1"] = product{ID: "p-1", PriceCents: tt.price, Stock: maxQuantity}

			o, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: &tt.qty})

			require.NoError(t, err)
			want := Order{ID: "o-1", UserID: "u-1", ProductID: "p-1", Quantity: tt.qty, TotalCents: tt.wantTotal, Status: StatusCreated, CreatedAt: testNow}
			assert.Equal(t, want, o)
			assert.Equal(t, want, f.orders.all(t)["o-1"], "the order is stored")
			assert.Equal(t, []reservation{{productID: "p-1", orderID: "o-1"}}, f.catalog.confirms, "the hold is confirmed")
			assert.Equal(t, []reservation{{"p-1", "o-1", tt.qty}}, f.catalog.reserves, "stock is reserved under the order's id")
			assert.Empty(t, f.catalog.releases)
		})
	}
}

func TestPlaceRefusals(t *testing.T) {
	tests := []struct {
		name        string
		in          NewOrder
		setup       func(f deskFakes)
		wantCode    api.Code
		wantStatus  int
		wantReserve bool // Reserve was called
	}{
		{
			name:       "unknown user",
			in:         NewOrder{UserID: "u-404", ProductID: "p-1", Quantity: ptr[int64](1)},
			wantCode:   api.CodeUnknownUser,
			wantStatus: 422,
		},
		{
			name:        "unknown product",
			in:          NewOrder{UserID: "u-1", ProductID: "p-404", Quantity: ptr[int64](1)},
			wantCode:    api.CodeUnknownProduct,
			wantStatus:  422,
			wantReserve: true,
		},
		{
			name:        "stock short",
			in:          NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](11)},
			wantCode:    api.CodeInsufficientStock,
			wantStatus:  409,
			wantReserve: true,
		},
		{
			name:        "a refusal products made is passed on",
			in:          NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](1)},
			setup:       func(f deskFakes) { f.catalog.reserveErr = api.Errorf(api.CodeConflict, "reservation in progress") },
			wantCode:    api.CodeConflict,
			wantStatus:  409,
			wantReserve: true,
		},
		{
			name:        "stock gone by the time it is reserved",
			in:          NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](5)},
			setup:       func(f deskFakes) { f.catalog.reserveErr = ErrInsufficientStock },
			wantCode:    api.CodeInsufficientStock,
			wantStatus:  409,
			wantReserve: true,
		},
		{
			name:        "product gone by the time it is reserved",
			in:          NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](5)},
			setup:       func(f deskFakes) { f.catalog.reserveErr = fmt.Errorf("reserve: %w", ErrUnknownProduct) },
			wantCode:    api.CodeUnknownProduct,
			wantStatus:  422,
			wantReserve: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			if tt.setup != nil {
				tt.setup(f)
			}

			_, err := d.Place(t.Context(), tt.in)

			e := apitest.RequireCode(t, err, tt.wantCode)
			assert.Equal(t, tt.wantStatus, e.Code.Status())
			assert.Equal(t, tt.wantReserve, len(f.catalog.reserves) > 0)
			assert.Empty(t, f.orders.all(t), "no order is stored")
			assert.Empty(t, f.catalog.releases, "nothing was reserved, so nothing is released")
		})
	}
}

func TestPlaceDependencyUnavailable(t *testing.T) {
	down := fmt.Errorf("GET users/users/u-1: %w: dial tcp 127.0.0.1:3500: connection refused", api.ErrUnavailable)
	tests := []struct {
		name         string
		setup        func(f deskFakes)
		wantReleased bool
	}{
		{name: "users down", setup: func(f deskFakes) { f.users.err = down }},
		// No answer from products: stock may be held, so it is released.
		{name: "products down on reserve", setup: func(f deskFakes) { f.catalog.reserveErr = down }, wantReleased: true},
		// The transaction surely failed (the order is not there): release.
		{name: "order store down", setup: func(f deskFakes) {
			f.orders.failTransactions(status.Error(codes.Unavailable, "postgres down"), false)
		}, wantReleased: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			tt.setup(f)

			_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

			require.ErrorIs(t, err, api.ErrUnavailable)
			var e *api.Error
			assert.False(t, errors.As(err, &e), "a dependency failure is not turned into a client error: %v", err)
			assert.Empty(t, f.orders.all(t))
			assert.Empty(t, f.orders.events(t), "no event for an order not stored")
			if tt.wantReleased {
				assert.Equal(t, []reservation{{productID: "p-1", orderID: "o-1"}}, f.catalog.releases)
			}
			assert.Equal(t, int64(10), f.catalog.products["p-1"].Stock, "no stock stays held")
		})
	}
}

// The order was stored but the answer was lost: reading back finds it, so
// it is a success and the stock is not released.
func TestPlaceReadsBackALostAnswer(t *testing.T) {
	d, f := newTestDesk(t)
	f.orders.failTransactions(status.Error(codes.DeadlineExceeded, "timeout"), true)

	o, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

	require.NoError(t, err)
	assert.Equal(t, o, f.orders.all(t)[o.ID])
	assert.Empty(t, f.catalog.releases, "the stock of a stored order stays sold")
	assert.Equal(t, int64(8), f.catalog.products["p-1"].Stock)
	assert.Len(t, f.orders.events(t), 1)
	assert.Equal(t, []reservation{{productID: "p-1", orderID: o.ID}}, f.catalog.confirms)
}

// The write failed and the read-back fails too: nobody knows whether the
// order is stored, so nothing is released; products' repair settles the hold
// later by asking orders.
func TestPlaceLeavesTheHoldWhenNothingIsKnown(t *testing.T) {
	d, f := newTestDesk(t)
	f.orders.fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "ExecuteStateTransaction" || (c.Method == "GetState" && len(c.Keys) == 1 && strings.HasPrefix(c.Keys[0], "order/")) {
			return sidecartest.Fault{Err: status.Error(codes.Unavailable, "postgres gone")}
		}
		return sidecartest.Fault{}
	})

	_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

	require.ErrorIs(t, err, api.ErrUnavailable)
	assert.Empty(t, f.catalog.releases)
	assert.Empty(t, f.catalog.confirms)
}

func TestPlaceReleasesWhenTheOrderCannotBeStored(t *testing.T) {
	releaseErr := fmt.Errorf("DELETE products/p-1/reservations/o-1: %w", api.ErrUnavailable)
	tests := []struct {
		name       string
		releaseErr error
		wantStock  int64
	}{
		{name: "release succeeds", wantStock: 10},
		// products' repair gives it back later
		{name: "release fails too", releaseErr: releaseErr, wantStock: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			f.orders.failTransactions(status.Error(codes.Internal, "constraint violation"), false)
			f.catalog.releaseErr = tt.releaseErr

			_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

			require.Error(t, err)
			if tt.releaseErr != nil {
				assert.ErrorIs(t, err, tt.releaseErr)
			}
			assert.Equal(t, []reservation{{productID: "p-1", orderID: "o-1"}}, f.catalog.releases, "the stock held for this order is released")
			assert.Equal(t, tt.wantStock, f.catalog.products["p-1"].Stock)
		})
	}
}

func TestPlaceReleasesEvenWhenTheRequestIsCancelled(t *testing.T) {
	d, f := newTestDesk(t)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	f.catalog.onReserve = cancel

	_, err := d.Place(ctx, NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

	require.Error(t, err)
	require.Len(t, f.catalog.releaseCtx, 1)
	assert.NoError(t, f.catalog.releaseCtx[0], "the release must not inherit the cancellation")
	assert.Equal(t, int64(10), f.catalog.products["p-1"].Stock)
}

// Past the deadline the order is not stored: products may already be
// settling its hold as abandoned.
func TestPlacePastTheDeadlineStoresNothing(t *testing.T) {
	d, f := newTestDesk(t)
	d.PlaceDeadline = time.Second
	f.catalog.onReserve = func() { f.advance(2 * time.Second) }

	_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

	require.ErrorIs(t, err, api.ErrUnavailable)
	assert.Empty(t, f.orders.all(t))
	assert.Equal(t, int64(10), f.catalog.products["p-1"].Stock)
}

// A failed confirmation does not fail the order: it is stored, and products'
// repair confirms the hold.
func TestPlaceConfirmFailureStillPlaces(t *testing.T) {
	d, f := newTestDesk(t)
	f.catalog.confirmErr = fmt.Errorf("products down: %w", api.ErrUnavailable)

	o, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

	require.NoError(t, err)
	assert.Contains(t, f.orders.all(t), o.ID)
	assert.Equal(t, []string{StepPlaceReserved, StepPlaceStored}, *f.steps)
}

func TestOrder(t *testing.T) {
	d, f := newTestDesk(t)
	placed := place(t, d)
	require.Contains(t, f.orders.all(t), placed.ID)

	tests := []struct {
		name     string
		id       string
		wantCode api.Code
	}{
		{name: "known", id: placed.ID},
		{name: "unknown", id: "o-404", wantCode: api.CodeNotFound},
		{name: "invalid id", id: "o 1", wantCode: api.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Order(t.Context(), tt.id)

			if tt.wantCode != "" {
				apitest.RequireCode(t, err, tt.wantCode)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, placed, got)
		})
	}
}

func TestPlacePublishesOrderCreated(t *testing.T) {
	d, f := newTestDesk(t)
	o, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr(int64(2))})
	require.NoError(t, err)
	events := f.orders.events(t)
	require.Len(t, events, 1, "one event per order")
	ev := events[0]
	assert.Equal(t, EventOrderCreated, ev.Type)
	assert.Equal(t, o.ID, ev.OrderID)
	assert.Equal(t, "u-1", ev.UserID)
	assert.Equal(t, int64(2500), ev.TotalCents)
	assert.Equal(t, StatusCreated, ev.Status)
}

func TestShip(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, d *Desk, f deskFakes) string // returns the order id to ship
		wantCode api.Code
		events   int // order events after the ship
	}{
		{
			name:   "a created (unpaid) order ships",
			setup:  func(t *testing.T, d *Desk, f deskFakes) string { return place(t, d).ID },
			events: 2,
		},
		{
			name: "a paid order ships",
			setup: func(t *testing.T, d *Desk, f deskFakes) string {
				o := place(t, d)
				require.NoError(t, d.MarkPaid(t.Context(), PaymentCompleted{PaymentID: "pay-1", OrderID: o.ID}))
				return o.ID
			},
			events: 2,
		},
		{
			name:     "unknown order",
			setup:    func(*testing.T, *Desk, deskFakes) string { return "nope" },
			wantCode: api.CodeNotFound,
		},
		{
			name:     "invalid id",
			setup:    func(*testing.T, *Desk, deskFakes) string { return "a/../b" },
			wantCode: api.CodeNotFound,
		},
		{
			name: "an order already shipped",
			setup: func(t *testing.T, d *Desk, f deskFakes) string {
				o := place(t, d)
				_, err := d.Ship(t.Context(), o.ID)
				require.NoError(t, err)
				return o.ID
			},
			wantCode: api.CodeInvalidState,
			events:   2,
		},
		{
			name: "an order another request is shipping",
			setup: func(t *testing.T, d *Desk, f deskFakes) string {
				o := place(t, d)
				claimOnly(t, f, o.ID, testNow)
				return o.ID
			},
			wantCode: api.CodeInvalidState,
			events:   1,
		},
		{
			name: "a claim left by a ship that died is taken over",
			setup: func(t *testing.T, d *Desk, f deskFakes) string {
				o := place(t, d)
				claimOnly(t, f, o.ID, testNow)
				f.advance(time.Minute)
				return o.ID
			},
			events: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			id := tt.setup(t, d, f)
			o, err := d.Ship(t.Context(), id)
			if tt.wantCode != "" {
				apitest.RequireCode(t, err, tt.wantCode)
			} else {
				require.NoError(t, err)
				assert.Equal(t, StatusShipped, o.Status)
				require.NotNil(t, o.ShippedAt)
				events := f.orders.events(t)
				last := events[len(events)-1]
				assert.Equal(t, EventOrderShipped, last.Type)
				assert.Equal(t, StatusShipped, f.orders.all(t)[id].Status)
				r, _, err := f.orders.Order(t.Context(), id)
				require.NoError(t, err)
				assert.Nil(t, r.ShipClaim, "the claim goes with the ship")
			}
			assert.Len(t, f.orders.events(t), tt.events)
		})
	}
}

// claimOnly leaves a ship claim on an order, as a ship that died after its
// first step does.
func claimOnly(t *testing.T, f deskFakes, id string, at time.Time) {
	t.Helper()
	_, err := f.orders.Change(t.Context(), id, func(r *orderRecord) error {
		r.ShipClaim = &ShipClaim{Token: "dead", At: at}
		return nil
	})
	require.NoError(t, err)
}

// Ships racing on two replicas (two Desks over one store): one 200, the
// others 409, and exactly one outbox transaction, so no failed transaction
// stages an event (which unpatched daprd would retry forever).
func TestShipRacingOnTwoReplicasWritesOneTransaction(t *testing.T) {
	d, f := newTestDesk(t)
	o := place(t, d)
	other := &Desk{Users: d.Users, Catalog: d.Catalog, Orders: d.Orders, Now: d.Now, NewID: d.NewID}
	replicas := []*Desk{d, other}
	transactions := f.orders.fake.Calls("ExecuteStateTransaction")

	var ok, conflict atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := replicas[i%2].Ship(t.Context(), o.ID)
			var e *api.Error
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &e) && e.Code == api.CodeInvalidState:
				conflict.Add(1)
			default:
				t.Errorf("unexpected: %v", err)
			}
		})
	}
	wg.Wait()

	assert.Equal(t, int64(1), ok.Load())
	assert.Equal(t, int64(7), conflict.Load())
	assert.Equal(t, 1, f.orders.fake.Calls("ExecuteStateTransaction")-transactions, "one transaction, which succeeded")
	assert.Len(t, f.orders.events(t), 2)
}

func TestShipReadsBackALostAnswer(t *testing.T) {
	d, f := newTestDesk(t)
	o := place(t, d)
	f.orders.failTransactions(status.Error(codes.DeadlineExceeded, "timeout"), true)

	shipped, err := d.Ship(t.Context(), o.ID)

	require.NoError(t, err)
	assert.Equal(t, StatusShipped, shipped.Status)
}

func TestMarkPaid(t *testing.T) {
	d, f := newTestDesk(t)
	o := place(t, d)
	ev := PaymentCompleted{Type: "payment_completed", PaymentID: "pay-1", OrderID: o.ID, AmountCents: o.TotalCents}

	require.NoError(t, d.MarkPaid(t.Context(), ev))
	paid := f.orders.all(t)[o.ID]
	assert.Equal(t, StatusPaid, paid.Status)
	assert.Equal(t, "pay-1", paid.PaymentID)
	before := f.orders.raw()

	require.NoError(t, d.MarkPaid(t.Context(), ev), "a redelivery is fine")
	assert.Equal(t, before, f.orders.raw(), "and changes nothing")
	assert.Len(t, f.orders.events(t), 1, "marking paid publishes no order event")

	other := ev
	other.PaymentID = "pay-2"
	assert.ErrorIs(t, d.MarkPaid(t.Context(), other), ErrConflict, "a second payment of one order is refused")

	ev.OrderID = "nope"
	assert.ErrorIs(t, d.MarkPaid(t.Context(), ev), ErrNotFound)
}

// A shipped order paid later stays shipped and records its payment.
func TestMarkPaidAfterShipKeepsShipped(t *testing.T) {
	d, f := newTestDesk(t)
	o := place(t, d)
	_, err := d.Ship(t.Context(), o.ID)
	require.NoError(t, err)

	require.NoError(t, d.MarkPaid(t.Context(), PaymentCompleted{PaymentID: "pay-1", OrderID: o.ID}))

	got := f.orders.all(t)[o.ID]
	assert.Equal(t, StatusShipped, got.Status)
	assert.Equal(t, "pay-1", got.PaymentID)
}

// While a ship holds the order, a payment waits (passing, redelivered); it
// is never a final refusal.
func TestMarkPaidWaitsForAShip(t *testing.T) {
	d, f := newTestDesk(t)
	o := place(t, d)
	claimOnly(t, f, o.ID, testNow)

	err := d.MarkPaid(t.Context(), PaymentCompleted{PaymentID: "pay-1", OrderID: o.ID})

	assert.ErrorIs(t, err, ErrBusy)
	assert.NotErrorIs(t, err, ErrConflict)
}

// Losing every ETag race is passing (ErrContended), never ErrConflict: the
// event is delivered again and the order ends paid.
func TestMarkPaidContendedIsPassing(t *testing.T) {
	d, f := newTestDesk(t)
	o := place(t, d)
	n := 0
	f.orders.fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "SaveState" {
			n++
			return sidecartest.Fault{Err: status.Error(codes.Aborted, "etag mismatch")}
		}
		return sidecartest.Fault{}
	})

	err := d.MarkPaid(t.Context(), PaymentCompleted{PaymentID: "pay-1", OrderID: o.ID})

	assert.ErrorIs(t, err, ErrContended)
	assert.NotErrorIs(t, err, ErrConflict)
	assert.Equal(t, sidecar.DefaultRetry.Attempts, n)
}

// With the store down before the write, the order surely is not stored: its
// stock is released at once, without waiting for a read-back or the repair.
func TestPlaceStoreDownReleasesAtOnce(t *testing.T) {
	d, f := newTestDesk(t)
	f.orders.fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method != "PublishEvent" {
			return sidecartest.Fault{Err: status.Error(codes.Unavailable, "postgres down")}
		}
		return sidecartest.Fault{}
	})

	_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

	require.ErrorIs(t, err, api.ErrUnavailable)
	assert.Equal(t, []reservation{{productID: "p-1", orderID: "o-1"}}, f.catalog.releases)
	assert.Equal(t, int64(10), f.catalog.products["p-1"].Stock)
	assert.Zero(t, f.orders.fake.Calls("ExecuteStateTransaction"), "no transaction sent")
}

// An outbox write is bounded (WriteTimeout): Dapr discards the event of a
// transaction it does not see committed within about 11 s, so a slow store
// must not make an order commit later than that.
func TestPlaceBoundsTheOutboxWrite(t *testing.T) {
	d, f := newTestDesk(t)
	d.WriteTimeout = 200 * time.Millisecond
	f.orders.fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "ExecuteStateTransaction" {
			return sidecartest.Fault{Delay: 5 * time.Second}
		}
		return sidecartest.Fault{}
	})
	start := time.Now()

	_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

	require.Error(t, err)
	assert.Less(t, time.Since(start), 3*time.Second, "the write gave up at its timeout")
	assert.Empty(t, f.orders.all(t), "nothing committed")
	assert.Equal(t, int64(10), f.catalog.products["p-1"].Stock, "read back as absent: released")
}
