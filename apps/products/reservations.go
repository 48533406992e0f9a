package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// Reservation is stock set aside for one order. There is at most one per
// order id, which makes reserving idempotent: a retried reservation of an
// order finds the first one instead of taking stock twice.
type Reservation struct {
	OrderID   string `json:"order_id"`
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
	// PriceCents is the unit price when the stock was reserved; orders
	// computes the order's total from it.
	PriceCents int64     `json:"price_cents"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
}

// reservationReserved is the status of a reservation holding stock.
const reservationReserved = "reserved"

// ReservationRequest is what orders sends to reserve stock.
type ReservationRequest struct {
	OrderID  string `json:"order_id"`
	Quantity *int64 `json:"quantity"`
}

const maxQuantity = 10_000

func (r ReservationRequest) validate() error {
	switch {
	case r.OrderID == "":
		return api.Errorf(api.CodeInvalidRequest, "order_id is required")
	case !api.ValidID(r.OrderID):
		return api.Errorf(api.CodeInvalidRequest, "order_id must be 1 to 64 letters, digits, '-' or '_'")
	case r.Quantity == nil:
		return api.Errorf(api.CodeInvalidRequest, "quantity is required")
	case *r.Quantity <= 0 || *r.Quantity > maxQuantity:
		return api.Errorf(api.CodeInvalidRequest, "quantity must be between 1 and %d", maxQuantity)
	}
	return nil
}

// Reserve takes quantity units of a product's stock for an order: it takes
// the stock with an ETag-checked write, re-reading and retrying when another
// reservation won the race, then records the reservation insert-only, keyed
// by the order. replayed is true when the order had already reserved.
func (c *Catalog) Reserve(ctx context.Context, productID string, req ReservationRequest) (res Reservation, replayed bool, err error) {
	if !api.ValidID(productID) {
		return Reservation{}, false, api.Errorf(api.CodeNotFound, "product %q not found", productID)
	}
	if err := req.validate(); err != nil {
		return Reservation{}, false, err
	}
	res = Reservation{OrderID: req.OrderID, ProductID: productID, Quantity: *req.Quantity, Status: reservationReserved, CreatedAt: c.now()}
	if got, _, err := c.store.Reservation(ctx, res.OrderID); err == nil {
		return replay(got, res)
	} else if !errors.Is(err, ErrNotFound) {
		return Reservation{}, false, err
	}

	// Within one replica, reservations of one product queue up here instead
	// of failing each other's ETag checks; across replicas the ETag still
	// decides.
	unlock := c.locks.lock(productID)
	err = c.retryOnConflict(ctx, "product "+productID, func() error {
		p, etag, err := c.store.Product(ctx, productID)
		if errors.Is(err, ErrNotFound) {
			return api.Errorf(api.CodeNotFound, "product %q not found", productID)
		}
		if err != nil {
			return err
		}
		if p.Stock < res.Quantity {
			return api.Errorf(api.CodeInsufficientStock, "product %s has %d in stock, %d asked", productID, p.Stock, res.Quantity)
		}
		p.Stock -= res.Quantity
		res.PriceCents = p.PriceCents
		return c.store.UpdateProduct(ctx, p, etag)
	})
	unlock()
	if err != nil {
		return Reservation{}, false, err
	}

	// The reservation is recorded insert-only: if another request for the
	// same order (a retry racing the first attempt, on another replica)
	// recorded one first, this one gives its stock back and answers theirs.
	if err := c.store.InsertReservation(ctx, res); err != nil {
		if undoErr := c.restock(context.WithoutCancel(ctx), res); undoErr != nil {
			return Reservation{}, false, errors.Join(err, undoErr)
		}
		if errors.Is(err, ErrConflict) {
			got, _, getErr := c.store.Reservation(ctx, res.OrderID)
			if getErr != nil {
				return Reservation{}, false, errors.Join(err, getErr)
			}
			return replay(got, res)
		}
		return Reservation{}, false, err
	}
	return res, false, nil
}

// replay answers a reservation for an order that already has one: the same
// reservation again, or 422 when the order reserved something else.
func replay(got, want Reservation) (Reservation, bool, error) {
	if got.ProductID != want.ProductID || got.Quantity != want.Quantity {
		return Reservation{}, false, api.Errorf(api.CodeUnprocessable, "order %s already reserved %d of product %s", got.OrderID, got.Quantity, got.ProductID)
	}
	return got, true, nil
}

// restock adds a reservation's quantity back to its product's stock.
func (c *Catalog) restock(ctx context.Context, res Reservation) error {
	unlock := c.locks.lock(res.ProductID)
	defer unlock()
	return c.retryOnConflict(ctx, "product "+res.ProductID, func() error {
		p, etag, err := c.store.Product(ctx, res.ProductID)
		if err != nil {
			return err
		}
		p.Stock += res.Quantity
		return c.store.UpdateProduct(ctx, p, etag)
	})
}

// Release gives an order's reserved stock back. Releasing an order that holds
// no reservation does nothing, so a retried release is harmless.
func (c *Catalog) Release(ctx context.Context, productID, orderID string) error {
	if !api.ValidID(productID) || !api.ValidID(orderID) {
		return api.Errorf(api.CodeNotFound, "no reservation of product %q for order %q", productID, orderID)
	}
	res, resETag, err := c.store.Reservation(ctx, orderID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if res.ProductID != productID {
		return api.Errorf(api.CodeNotFound, "no reservation of product %q for order %q", productID, orderID)
	}
	// Deleting the reservation first (ETag-checked) makes this release the
	// only one that puts the stock back.
	if err := c.store.DeleteReservation(ctx, orderID, resETag); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil
		}
		return err
	}
	if err := c.restock(ctx, res); err != nil {
		// Put the reservation back so that a retried release restocks.
		if undoErr := c.store.InsertReservation(context.WithoutCancel(ctx), res); undoErr != nil {
			return errors.Join(err, undoErr)
		}
		return err
	}
	return nil
}

// keyedMutex serialises work per key inside one process.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	waiters int
}

func newKeyedMutex() *keyedMutex { return &keyedMutex{locks: map[string]*keyLock{}} }

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	l, ok := k.locks[key]
	if !ok {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.waiters++
	k.mu.Unlock()

	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.waiters--
		if l.waiters == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
