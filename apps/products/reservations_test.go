package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
)

// reserve reserves qty of product for order.
func reserve(ctx context.Context, c *Catalog, productID, orderID string, qty int64) (Reservation, bool, error) {
	return c.Reserve(ctx, productID, ReservationRequest{OrderID: orderID, Quantity: &qty})
}

func TestReserveValidation(t *testing.T) {
	tests := []struct {
		name        string
		productID   string
		req         ReservationRequest
		wantCode    api.Code
		wantMessage string
	}{
		{"invalid product id", "p/1", ReservationRequest{OrderID: "o-1", Quantity: ptr[int64](1)}, api.CodeNotFound, "not found"},
		{"empty product id", "", ReservationRequest{OrderID: "o-1", Quantity: ptr[int64](1)}, api.CodeNotFound, "not found"},
		{"missing order id", "p-1", ReservationRequest{Quantity: ptr[int64](1)}, api.CodeInvalidRequest, "order_id is required"},
		{"invalid order id", "p-1", ReservationRequest{OrderID: "o||1", Quantity: ptr[int64](1)}, api.CodeInvalidRequest, "order_id must be"},
		{"overlong order id", "p-1", ReservationRequest{OrderID: strings.Repeat("o", 65), Quantity: ptr[int64](1)}, api.CodeInvalidRequest, "order_id must be"},
		{"missing quantity", "p-1", ReservationRequest{OrderID: "o-1"}, api.CodeInvalidRequest, "quantity is required"},
		{"zero quantity", "p-1", ReservationRequest{OrderID: "o-1", Quantity: ptr[int64](0)}, api.CodeInvalidRequest, "quantity must be"},
		{"negative quantity", "p-1", ReservationRequest{OrderID: "o-1", Quantity: ptr[int64](-3)}, api.CodeInvalidRequest, "quantity must be"},
		{"quantity too large", "p-1", ReservationRequest{OrderID: "o-1", Quantity: ptr[int64](maxQuantity + 1)}, api.CodeInvalidRequest, "quantity must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)
			addProduct(t, c, "Mug", 100, 10)

			_, _, err := c.Reserve(t.Context(), tt.productID, tt.req)

			e := apitest.RequireCode(t, err, tt.wantCode)
			assert.Contains(t, e.Message, tt.wantMessage)
			assert.Equal(t, int64(10), store.stock("p-1"))
			assert.Zero(t, store.reservationCount())
		})
	}
}

func TestReserve(t *testing.T) {
	tests := []struct {
		name      string
		stock     int64
		qty       int64
		wantStock int64
		wantCode  api.Code // "" when the reservation succeeds
	}{
		{name: "part of the stock", stock: 10, qty: 3, wantStock: 7},
		{name: "all of the stock", stock: 4, qty: 4, wantStock: 0},
		{name: "more than the stock", stock: 2, qty: 3, wantStock: 2, wantCode: api.CodeInsufficientStock},
		{name: "from an empty stock", stock: 0, qty: 1, wantStock: 0, wantCode: api.CodeInsufficientStock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)
			p := addProduct(t, c, "Mug", 100, tt.stock)

			res, replayed, err := reserve(t.Context(), c, p.ID, "o-1", tt.qty)

			assert.Equal(t, tt.wantStock, store.stock(p.ID))
			assert.False(t, replayed)
			stored, found := store.reservation("o-1")
			if tt.wantCode != "" {
				e := apitest.RequireCode(t, err, tt.wantCode)
				assert.Equal(t, 409, e.Code.Status())
				assert.False(t, found, "a refused reservation leaves nothing behind")
				return
			}
			require.NoError(t, err)
			want := Reservation{OrderID: "o-1", ProductID: p.ID, Quantity: tt.qty, PriceCents: p.PriceCents, Status: reservationReserved, CreatedAt: testNow}
			assert.Equal(t, want, res)
			require.True(t, found)
			assert.Equal(t, want, stored)
		})
	}
}

func TestReserveAfterRefusalCanSucceed(t *testing.T) {
	c, store := newTestCatalog(t)
	p := addProduct(t, c, "Mug", 100, 2)
	_, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)
	apitest.RequireCode(t, err, api.CodeInsufficientStock)

	res, replayed, err := reserve(t.Context(), c, p.ID, "o-1", 2)

	require.NoError(t, err, "the refused attempt must not hold the order id")
	assert.False(t, replayed)
	assert.Equal(t, int64(2), res.Quantity)
	assert.Equal(t, int64(0), store.stock(p.ID))
}

func TestReserveUnknownProduct(t *testing.T) {
	c, store := newTestCatalog(t)

	_, _, err := reserve(t.Context(), c, "p-404", "o-1", 1)

	apitest.RequireCode(t, err, api.CodeNotFound)
	assert.Zero(t, store.reservationCount())
}

func TestReserveRetriesConflicts(t *testing.T) {
	const attempts = 4
	tests := []struct {
		name      string
		conflicts int
		wantOK    bool
	}{
		{name: "no conflict", conflicts: 0, wantOK: true},
		{name: "one conflict", conflicts: 1, wantOK: true},
		{name: "conflicts one fewer than the attempts", conflicts: attempts - 1, wantOK: true},
		{name: "conflicts as many as the attempts", conflicts: attempts, wantOK: false},
		{name: "conflicts more than the attempts", conflicts: attempts + 5, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)
			c.attempts = attempts
			p := addProduct(t, c, "Mug", 100, 10)
			store.failNext("UpdateProduct", tt.conflicts, ErrConflict)

			res, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)

			if tt.wantOK {
				require.NoError(t, err)
				assert.Equal(t, reservationReserved, res.Status)
				assert.Equal(t, int64(7), store.stock(p.ID), "stock is taken exactly once")
				assert.Equal(t, tt.conflicts+1, store.callCount("UpdateProduct"))
				return
			}
			e := apitest.RequireCode(t, err, api.CodeConflict)
			assert.Equal(t, 409, e.Code.Status())
			assert.Equal(t, attempts, store.callCount("UpdateProduct"), "gives up after c.attempts writes")
			assert.Equal(t, int64(10), store.stock(p.ID))
			_, found := store.reservation("o-1")
			assert.False(t, found, "a failed reservation leaves nothing behind")
		})
	}
}

// A real conflict: another writer changes the product between our read and
// our write, so the ETag we hold is stale.
func TestReserveRereadsAfterRealConflict(t *testing.T) {
	c, store := newTestCatalog(t)
	p := addProduct(t, c, "Mug", 100, 10)
	interfering := &interferingStore{fakeStore: store, productID: p.ID, take: 4}
	c.store = interfering

	_, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)

	require.NoError(t, err)
	assert.Equal(t, int64(3), store.stock(p.ID), "both writers' takes count: 10 - 4 - 3")
	assert.Equal(t, 3, store.callCount("UpdateProduct"), "the other writer's, our lost one, our re-read winning one")
}

// interferingStore takes stock behind the Catalog's back once, right after the
// Catalog first reads the product.
type interferingStore struct {
	*fakeStore
	productID string
	take      int64
	done      bool
}

func (s *interferingStore) Product(ctx context.Context, id string) (Product, string, error) {
	p, etag, err := s.fakeStore.Product(ctx, id)
	if err == nil && !s.done && id == s.productID {
		s.done = true
		other := p
		other.Stock -= s.take
		if uerr := s.fakeStore.UpdateProduct(ctx, other, etag); uerr != nil {
			return Product{}, "", uerr
		}
	}
	return p, etag, err
}

func TestReserveStoreDown(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		wantReserved bool // a reservation remains stored
	}{
		{name: "looking for an earlier reservation fails", method: "Reservation"},
		{name: "recording the reservation fails (its stock is given back)", method: "InsertReservation"},
		{name: "reading the product fails", method: "Product"},
		{name: "writing the stock fails", method: "UpdateProduct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)
			p := addProduct(t, c, "Mug", 100, 10)
			store.failNext(tt.method, 1, api.ErrUnavailable)

			_, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)

			assert.ErrorIs(t, err, api.ErrUnavailable)
			assert.Equal(t, int64(10), store.stock(p.ID))
			assert.Zero(t, store.reservationCount())
		})
	}
}

func TestReserveIsIdempotentPerOrder(t *testing.T) {
	c, store := newTestCatalog(t)
	mug := addProduct(t, c, "Mug", 100, 10)
	plate := addProduct(t, c, "Plate", 200, 10)
	first, replayed, err := reserve(t.Context(), c, mug.ID, "o-1", 3)
	require.NoError(t, err)
	require.False(t, replayed)

	tests := []struct {
		name      string
		productID string
		qty       int64
		wantCode  api.Code // "" for a replay
	}{
		{name: "same request is replayed", productID: mug.ID, qty: 3},
		{name: "same request again is replayed", productID: mug.ID, qty: 3},
		{name: "different quantity", productID: mug.ID, qty: 4, wantCode: api.CodeUnprocessable},
		{name: "different product", productID: plate.ID, qty: 3, wantCode: api.CodeUnprocessable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, replayed, err := reserve(t.Context(), c, tt.productID, "o-1", tt.qty)

			if tt.wantCode != "" {
				e := apitest.RequireCode(t, err, tt.wantCode)
				assert.Equal(t, 422, e.Code.Status())
				assert.False(t, replayed)
			} else {
				require.NoError(t, err)
				assert.True(t, replayed)
				assert.Equal(t, first, res)
			}
			assert.Equal(t, int64(7), store.stock(mug.ID), "stock is taken once per order")
			assert.Equal(t, int64(10), store.stock(plate.ID))
			stored, found := store.reservation("o-1")
			require.True(t, found)
			assert.Equal(t, first, stored, "the first reservation stands")
		})
	}
}

func TestReserveRacingTheSameOrderOnAnotherReplica(t *testing.T) {
	c, store := newTestCatalog(t)
	p := addProduct(t, c, "Mug", 100, 10)
	c.store = &racingStore{fakeStore: store, other: Reservation{OrderID: "o-1", ProductID: p.ID, Quantity: 3, Status: reservationReserved, CreatedAt: testNow}}

	res, replayed, err := reserve(t.Context(), c, p.ID, "o-1", 3)

	require.NoError(t, err)
	assert.True(t, replayed, "the other replica's reservation is the answer")
	assert.Equal(t, testNow, res.CreatedAt)
	assert.Equal(t, int64(7), store.stock(p.ID), "the other replica's 3 taken, ours given back")
}

// racingStore plays another replica that reserves the same order (taking its
// stock) just before this one records its reservation.
type racingStore struct {
	*fakeStore
	other Reservation
	done  bool
}

func (s *racingStore) InsertReservation(ctx context.Context, r Reservation) error {
	if !s.done {
		s.done = true
		p, etag, err := s.fakeStore.Product(ctx, s.other.ProductID)
		if err != nil {
			return err
		}
		p.Stock -= s.other.Quantity
		if err := s.fakeStore.UpdateProduct(ctx, p, etag); err != nil {
			return err
		}
		s.fakeStore.putReservation(s.other)
	}
	return s.fakeStore.InsertReservation(ctx, r)
}

func TestRelease(t *testing.T) {
	c, store := newTestCatalog(t)
	p := addProduct(t, c, "Mug", 100, 10)
	_, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)
	require.NoError(t, err)
	require.Equal(t, int64(7), store.stock(p.ID))

	for i := range 3 {
		t.Run(fmt.Sprintf("release %d", i+1), func(t *testing.T) {
			err := c.Release(t.Context(), p.ID, "o-1")

			require.NoError(t, err)
			assert.Equal(t, int64(10), store.stock(p.ID), "stock comes back once")
			_, found := store.reservation("o-1")
			assert.False(t, found)
		})
	}

	t.Run("the order may reserve again", func(t *testing.T) {
		_, replayed, err := reserve(t.Context(), c, p.ID, "o-1", 5)
		require.NoError(t, err)
		assert.False(t, replayed)
		assert.Equal(t, int64(5), store.stock(p.ID))
	})
}

func TestReleaseRefusals(t *testing.T) {
	tests := []struct {
		name      string
		productID string
		orderID   string
		wantCode  api.Code // "" when the release is a no-op success
	}{
		{name: "order without reservation", productID: "p-1", orderID: "o-404"},
		{name: "product that is not the reserved one", productID: "p-2", orderID: "o-1", wantCode: api.CodeNotFound},
		{name: "invalid product id", productID: "p 1", orderID: "o-1", wantCode: api.CodeNotFound},
		{name: "invalid order id", productID: "p-1", orderID: "o/1", wantCode: api.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)
			p := addProduct(t, c, "Mug", 100, 10)
			addProduct(t, c, "Plate", 100, 10)
			_, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)
			require.NoError(t, err)
			stockBefore := store.stock(p.ID)

			err = c.Release(t.Context(), tt.productID, tt.orderID)

			if tt.wantCode == "" {
				assert.NoError(t, err)
			} else {
				apitest.RequireCode(t, err, tt.wantCode)
			}
			assert.Equal(t, stockBefore, store.stock(p.ID), "nothing is put back")
			_, found := store.reservation("o-1")
			assert.True(t, found, "the order's reservation stays")
		})
	}
}

func TestReleaseRetriesConflicts(t *testing.T) {
	c, store := newTestCatalog(t)
	c.attempts = 3
	p := addProduct(t, c, "Mug", 100, 10)
	_, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)
	require.NoError(t, err)
	store.failNext("UpdateProduct", 2, ErrConflict)

	require.NoError(t, c.Release(t.Context(), p.ID, "o-1"))

	assert.Equal(t, int64(10), store.stock(p.ID))
}

func TestReleaseConcurrently(t *testing.T) {
	const releasers = 10
	c, store := newTestCatalog(t)
	p := addProduct(t, c, "Mug", 100, 10)
	_, _, err := reserve(t.Context(), c, p.ID, "o-1", 4)
	require.NoError(t, err)

	start := make(chan struct{})
	errs := make([]error, releasers)
	var wg sync.WaitGroup
	for i := range releasers {
		wg.Go(func() {
			<-start
			errs[i] = c.Release(context.Background(), p.ID, "o-1")
		})
	}
	close(start)
	wg.Wait()

	for _, err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, int64(10), store.stock(p.ID), "concurrent releases put the stock back once")
}

// Two releases that both read the reservation before either deletes it: the
// ETag-checked delete lets only one of them restock, and the loser succeeds
// quietly.
func TestReleaseRacingReleasesRestockOnce(t *testing.T) {
	c, store := newTestCatalog(t)
	p := addProduct(t, c, "Mug", 100, 10)
	_, _, err := reserve(t.Context(), c, p.ID, "o-1", 4)
	require.NoError(t, err)
	racing := &readBarrierStore{fakeStore: store}
	racing.readers.Add(2)
	c.store = racing

	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = c.Release(context.Background(), p.ID, "o-1") })
	}
	wg.Wait()

	assert.NoError(t, errs[0])
	assert.NoError(t, errs[1])
	assert.Equal(t, int64(10), store.stock(p.ID), "the stock comes back once")
	assert.Equal(t, 2, store.callCount("DeleteReservation"), "both releases tried to delete the version they read")
}

// readBarrierStore holds the first reservation readers until all of them have
// read, so they all hold the same version.
type readBarrierStore struct {
	*fakeStore
	readers sync.WaitGroup
	mu      sync.Mutex
	passed  int
}

func (s *readBarrierStore) Reservation(ctx context.Context, orderID string) (Reservation, string, error) {
	r, etag, err := s.fakeStore.Reservation(ctx, orderID)
	s.mu.Lock()
	s.passed++
	held := s.passed <= 2
	s.mu.Unlock()
	if held {
		s.readers.Done()
		s.readers.Wait()
	}
	return r, etag, err
}

func TestReserveConcurrently(t *testing.T) {
	const (
		stock  = 50
		buyers = 200
	)
	tests := []struct {
		name     string
		replicas int
	}{
		// One replica: its per-product lock queues the reservations.
		{name: "one replica", replicas: 1},
		// Several replicas over one store: only the ETags keep stock right.
		{name: "four replicas sharing a store", replicas: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, store := newTestCatalog(t)
			p := addProduct(t, first, "Mug", 100, stock)
			catalogs := []*Catalog{first}
			for range tt.replicas - 1 {
				c := NewCatalog(store, first.now, first.newID)
				catalogs = append(catalogs, c)
			}
			for _, c := range catalogs {
				c.backoff = 0
				c.attempts = 1 << 20 // contention must never be what decides
			}

			start := make(chan struct{})
			errs := make([]error, buyers)
			var wg sync.WaitGroup
			for i := range buyers {
				c := catalogs[i%len(catalogs)]
				wg.Go(func() {
					<-start
					_, _, errs[i] = reserve(context.Background(), c, p.ID, fmt.Sprintf("o-%d", i), 1)
				})
			}
			close(start)
			wg.Wait()

			var ok, short int
			for _, err := range errs {
				var e *api.Error
				switch {
				case err == nil:
					ok++
				case errors.As(err, &e) && e.Code == api.CodeInsufficientStock:
					short++
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
			assert.Equal(t, stock, ok)
			assert.Equal(t, buyers-stock, short)
			assert.Equal(t, int64(0), store.stock(p.ID))
			assert.Equal(t, stock, store.reservationCount(), "only successful orders hold a reservation")
			if tt.replicas == 1 {
				// The per-product lock queues one replica's reservations, so
				// none of them loses an ETag race.
				assert.Equal(t, stock, store.callCount("UpdateProduct"))
			}
		})
	}
}

// A Reserve that took the stock but failed to mark its reservation reserved
// must not hold that stock forever: retrying the order, or releasing it, has
// to end with the stock either reserved for the order or back on the shelf.
func TestReserveFailingAfterTakingStockDoesNotStrandIt(t *testing.T) {
	tests := []struct {
		name   string
		method string
	}{
		{name: "recording the reservation fails", method: "InsertReservation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)
			p := addProduct(t, c, "Mug", 100, 10)
			store.failNext(tt.method, 1, api.ErrUnavailable)
			_, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)
			require.ErrorIs(t, err, api.ErrUnavailable)
			assert.Equal(t, int64(10), store.stock(p.ID), "the failed reserve gave its stock back")
			_, found := store.reservation("o-1")
			assert.False(t, found, "the failed reserve dropped its claim")

			// The store is back. The caller retries, then releases.
			_, _, err = reserve(t.Context(), c, p.ID, "o-1", 3)
			require.NoError(t, err)
			assert.Equal(t, int64(7), store.stock(p.ID), "the retry reserves the stock once")
			require.NoError(t, c.Release(t.Context(), p.ID, "o-1"))
			assert.Equal(t, int64(10), store.stock(p.ID), "the release puts the stock back")
		})
	}
}

// A Release that deleted the reservation but could not put the stock back must
// leave a way to get that stock back: retrying the release must do it.
func TestReleaseFailingToRestockCanBeRetried(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		err      error
	}{
		{name: "stock write unavailable", failures: 1, err: api.ErrUnavailable},
		{name: "stock write contended past the attempts", failures: 3, err: ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCatalog(t)
			c.attempts = 3
			p := addProduct(t, c, "Mug", 100, 10)
			_, _, err := reserve(t.Context(), c, p.ID, "o-1", 3)
			require.NoError(t, err)
			store.failNext("UpdateProduct", tt.failures, tt.err)
			require.Error(t, c.Release(t.Context(), p.ID, "o-1"), "the first release fails")

			require.NoError(t, c.Release(t.Context(), p.ID, "o-1"))

			assert.Equal(t, int64(10), store.stock(p.ID))
		})
	}
}
