package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
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

// reservation is one call of fakeCatalog.Reserve.
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

// fakeCatalog is a Catalog over a map of products that records reservations
// and releases; its stock moves like the real one's.
type fakeCatalog struct {
	mu         sync.Mutex
	products   map[string]product
	reserveErr error // returned by Reserve instead of reserving
	releaseErr error // returned by Release after recording it
	reserved   map[string]reservation
	reserves   []reservation
	releases   []reservation
	releaseCtx []error // ctx.Err() of each Release call
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
	return p.PriceCents, nil
}

func (c *fakeCatalog) Release(ctx context.Context, productID, orderID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releases = append(c.releases, reservation{productID: productID, orderID: orderID})
	c.releaseCtx = append(c.releaseCtx, ctx.Err())
	if c.releaseErr != nil {
		return c.releaseErr
	}
	if r, ok := c.reserved[orderID]; ok && r.productID == productID {
		p := c.products[productID]
		p.Stock += r.quantity
		c.products[productID] = p
		delete(c.reserved, orderID)
	}
	return nil
}

// fakeOrders is an OrderStore over a map, with a version per order as its
// ETag, and the events it would have published.
type fakeOrders struct {
	orders    map[string]Order
	versions  map[string]int
	events    []Event
	createErr error
	onCreate  func() // runs at the start of Create
	onUpdate  func() // runs at the start of Update
}

func (s *fakeOrders) Create(_ context.Context, o Order, ev Event) error {
	if s.onCreate != nil {
		s.onCreate()
	}
	if s.createErr != nil {
		return s.createErr
	}
	if s.versions == nil {
		s.versions = map[string]int{}
	}
	s.orders[o.ID] = o
	s.versions[o.ID]++
	s.events = append(s.events, ev)
	return nil
}

func (s *fakeOrders) Update(_ context.Context, o Order, etag string, ev Event) error {
	if s.onUpdate != nil {
		s.onUpdate()
	}
	if strconv.Itoa(s.versions[o.ID]) != etag {
		return ErrConflict
	}
	s.orders[o.ID] = o
	s.versions[o.ID]++
	s.events = append(s.events, ev)
	return nil
}

func (s *fakeOrders) Save(_ context.Context, o Order, etag string) error {
	if strconv.Itoa(s.versions[o.ID]) != etag {
		return ErrConflict
	}
	s.orders[o.ID] = o
	s.versions[o.ID]++
	return nil
}

func (s *fakeOrders) Order(_ context.Context, id string) (Order, string, error) {
	o, ok := s.orders[id]
	if !ok {
		return Order{}, "", ErrNotFound
	}
	return o, strconv.Itoa(s.versions[id]), nil
}

var testNow = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

type deskFakes struct {
	users   *fakeUsers
	catalog *fakeCatalog
	orders  *fakeOrders
}

// newTestDesk returns a Desk knowing user u-1 and product p-1 (1250 cents,
// 10 in stock), whose next order id is o-1.
func newTestDesk(t *testing.T) (*Desk, deskFakes) {
	t.Helper()
	f := deskFakes{
		users: &fakeUsers{ids: map[string]bool{"u-1": true}},
		catalog: &fakeCatalog{
			products: map[string]product{"p-1": {ID: "p-1", PriceCents: 1250, Stock: 10}},
			reserved: map[string]reservation{},
		},
		orders: &fakeOrders{orders: map[string]Order{}},
	}
	d := &Desk{
		Users:   f.users,
		Catalog: f.catalog,
		Orders:  f.orders,
		Now:     func() time.Time { return testNow },
		NewID:   func() string { return "o-1" },
	}
	return d, f
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
			assert.Equal(t, want, f.orders.orders["o-1"], "the order is stored")
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
			assert.Empty(t, f.orders.orders, "no order is stored")
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
		// No answer from products: the reservation may exist, so it is released.
		{name: "products down on reserve", setup: func(f deskFakes) { f.catalog.reserveErr = down }, wantReleased: true},
		{name: "order store down", setup: func(f deskFakes) { f.orders.createErr = down }, wantReleased: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			tt.setup(f)

			_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

			require.ErrorIs(t, err, api.ErrUnavailable)
			var e *api.Error
			assert.False(t, errors.As(err, &e), "a dependency failure is not turned into a client error: %v", err)
			assert.Empty(t, f.orders.orders)
			if tt.wantReleased {
				assert.Equal(t, []reservation{{productID: "p-1", orderID: "o-1"}}, f.catalog.releases)
			}
			assert.Equal(t, int64(10), f.catalog.products["p-1"].Stock, "no stock stays held")
		})
	}
}

func TestPlaceReleasesWhenTheOrderCannotBeStored(t *testing.T) {
	storeErr := errors.New("orderstore: constraint violation")
	releaseErr := fmt.Errorf("DELETE products/p-1/reservations/o-1: %w", api.ErrUnavailable)
	tests := []struct {
		name       string
		releaseErr error
		wantIs     []error
		wantStock  int64
	}{
		{name: "release succeeds", wantIs: []error{storeErr}, wantStock: 10},
		{name: "release fails too", releaseErr: releaseErr, wantIs: []error{storeErr, releaseErr, api.ErrUnavailable}, wantStock: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			f.orders.createErr = storeErr
			f.catalog.releaseErr = tt.releaseErr

			_, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

			for _, want := range tt.wantIs {
				assert.ErrorIs(t, err, want)
			}
			assert.Equal(t, []reservation{{productID: "p-1", orderID: "o-1"}}, f.catalog.releases, "the reservation made for this order is released")
			assert.Equal(t, tt.wantStock, f.catalog.products["p-1"].Stock)
		})
	}
}

func TestPlaceReleasesEvenWhenTheRequestIsCancelled(t *testing.T) {
	d, f := newTestDesk(t)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	f.orders.onCreate = cancel
	f.orders.createErr = context.Canceled

	_, err := d.Place(ctx, NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](2)})

	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, f.catalog.releaseCtx, 1)
	assert.NoError(t, f.catalog.releaseCtx[0], "the release must not inherit the cancellation")
	assert.Equal(t, int64(10), f.catalog.products["p-1"].Stock)
}

func TestOrder(t *testing.T) {
	d, f := newTestDesk(t)
	placed, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr[int64](1)})
	require.NoError(t, err)
	require.Contains(t, f.orders.orders, placed.ID)

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
	require.Len(t, f.orders.events, 1, "one event per order")
	ev := f.orders.events[0]
	assert.Equal(t, EventOrderCreated, ev.Type)
	assert.Equal(t, o.ID, ev.OrderID)
	assert.Equal(t, "u-1", ev.UserID)
	assert.Equal(t, int64(2500), ev.TotalCents)
	assert.Equal(t, StatusCreated, ev.Status)
}

func TestShip(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(d *Desk, f deskFakes) string // returns the order id to ship
		wantCode api.Code
		events   int // order events after the ship
	}{
		{
			name: "a created order ships",
			setup: func(d *Desk, f deskFakes) string {
				o, _ := d.Place(context.Background(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr(int64(1))})
				return o.ID
			},
			events: 2,
		},
		{
			name:     "unknown order",
			setup:    func(*Desk, deskFakes) string { return "nope" },
			wantCode: api.CodeNotFound,
		},
		{
			name:     "invalid id",
			setup:    func(*Desk, deskFakes) string { return "a/../b" },
			wantCode: api.CodeNotFound,
		},
		{
			name: "an order already shipped",
			setup: func(d *Desk, f deskFakes) string {
				o, _ := d.Place(context.Background(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr(int64(1))})
				_, _ = d.Ship(context.Background(), o.ID)
				return o.ID
			},
			wantCode: api.CodeInvalidState,
			events:   2,
		},
		{
			name: "the order changed between read and write",
			setup: func(d *Desk, f deskFakes) string {
				o, _ := d.Place(context.Background(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr(int64(1))})
				f.orders.onUpdate = func() { f.orders.versions[o.ID]++ }
				return o.ID
			},
			wantCode: api.CodeInvalidState,
			events:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			id := tt.setup(d, f)
			o, err := d.Ship(t.Context(), id)
			if tt.wantCode != "" {
				apitest.RequireCode(t, err, tt.wantCode)
			} else {
				require.NoError(t, err)
				assert.Equal(t, StatusShipped, o.Status)
				require.NotNil(t, o.ShippedAt)
				last := f.orders.events[len(f.orders.events)-1]
				assert.Equal(t, EventOrderShipped, last.Type)
				assert.Equal(t, StatusShipped, f.orders.orders[id].Status)
			}
			assert.Len(t, f.orders.events, tt.events)
		})
	}
}

func TestMarkPaid(t *testing.T) {
	d, f := newTestDesk(t)
	o, err := d.Place(t.Context(), NewOrder{UserID: "u-1", ProductID: "p-1", Quantity: ptr(int64(1))})
	require.NoError(t, err)
	ev := PaymentCompleted{Type: "payment_completed", PaymentID: "pay-1", OrderID: o.ID, AmountCents: o.TotalCents}

	require.NoError(t, d.MarkPaid(t.Context(), ev))
	paid := f.orders.orders[o.ID]
	assert.Equal(t, StatusPaid, paid.Status)
	assert.Equal(t, "pay-1", paid.PaymentID)
	version := f.orders.versions[o.ID]

	require.NoError(t, d.MarkPaid(t.Context(), ev), "a redelivery is fine")
	assert.Equal(t, version, f.orders.versions[o.ID], "and changes nothing")
	assert.Len(t, f.orders.events, 1, "marking paid publishes no order event")

	other := ev
	other.PaymentID = "pay-2"
	assert.ErrorIs(t, d.MarkPaid(t.Context(), other), ErrConflict, "a second payment of one order is refused")

	ev.OrderID = "nope"
	assert.ErrorIs(t, d.MarkPaid(t.Context(), ev), ErrNotFound)
}
