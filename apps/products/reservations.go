package main

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// Hold is stock a product holds for one order that orders has neither
// confirmed (the order is stored) nor released. It lives inside the product's
// own record, written in the same write as the stock it took, so taking
// stock and recording for whom are one atomic step.
type Hold struct {
	Quantity int64 `json:"quantity"`
	// PriceCents is the unit price when the stock was held; orders
	// computes the order's total from it.
	PriceCents int64     `json:"price_cents"`
	At         time.Time `json:"at"`
}

// Reservation is what Reserve answers: the hold of one order.
type Reservation struct {
	OrderID    string    `json:"order_id"`
	ProductID  string    `json:"product_id"`
	Quantity   int64     `json:"quantity"`
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

// maxHolds bounds the holds one product record carries (and so its size):
// orders confirm or release theirs within a request, so this many at once
// means trouble, and more orders of the product wait (409, passing).
const maxHolds = 1000

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

// Reserve takes quantity units of a product's stock for an order, as a hold
// on the product written together with the stock it takes. Reserving is
// idempotent per order until the hold is confirmed or released: a retried
// reservation finds its hold (replayed is true) instead of taking stock
// twice, also when its first attempt's answer was lost.
func (c *Catalog) Reserve(ctx context.Context, productID string, req ReservationRequest) (res Reservation, replayed bool, err error) {
	if !api.ValidID(productID) {
		return Reservation{}, false, api.Errorf(api.CodeNotFound, "product %q not found", productID)
	}
	if err := req.validate(); err != nil {
		return Reservation{}, false, err
	}
	q := *req.Quantity
	res = Reservation{OrderID: req.OrderID, ProductID: productID, Quantity: q, Status: reservationReserved}

	// Within one replica, reservations of one product queue up here instead
	// of failing each other's ETag checks; across replicas the ETag decides.
	// Free, the lock is taken at once and the one read under it decides
	// (one read and one write per reservation). Held by others, a refusal
	// or a replay needs no place in the queue: what a fresh read shows is a
	// true answer at that moment, so only reservations that may take stock
	// wait.
	unlock, free := c.locks.TryLock(productID)
	if !free {
		if cur, err := c.store.Product(ctx, productID); err == nil {
			if h, ok := cur.Holds[req.OrderID]; ok && h.Quantity == q {
				res.PriceCents, res.CreatedAt = h.PriceCents, h.At
				return res, true, nil
			}
			if cur.Stock < q {
				return Reservation{}, false, api.Errorf(api.CodeInsufficientStock, "product %s has %d in stock, %d asked", productID, cur.Stock, q)
			}
		} else if errors.Is(err, ErrNotFound) {
			return Reservation{}, false, api.Errorf(api.CodeNotFound, "product %q not found", productID)
		}
		unlock = c.locks.Lock(productID)
	}
	defer unlock()
	_, err = c.store.ChangeProduct(ctx, productID, func(p *productRecord) error {
		replayed = false
		if h, ok := p.Holds[req.OrderID]; ok {
			if h.Quantity != q {
				return api.Errorf(api.CodeUnprocessable, "order %s already reserved %d of product %s", req.OrderID, h.Quantity, productID)
			}
			res.PriceCents, res.CreatedAt, replayed = h.PriceCents, h.At, true
			return ErrUnchanged
		}
		if p.Stock < q {
			return api.Errorf(api.CodeInsufficientStock, "product %s has %d in stock, %d asked", productID, p.Stock, q)
		}
		if len(p.Holds) >= maxHolds {
			return api.Errorf(api.CodeConflict, "product %s has too many orders in flight; try again", productID)
		}
		res.PriceCents, res.CreatedAt = p.PriceCents, c.now()
		p.Stock -= q
		p.Holds = cloneHolds(p.Holds)
		p.Holds[req.OrderID] = Hold{Quantity: q, PriceCents: p.PriceCents, At: res.CreatedAt}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Reservation{}, false, api.Errorf(api.CodeNotFound, "product %q not found", productID)
	}
	if err != nil {
		return Reservation{}, false, contended(err, "product "+productID)
	}
	return res, replayed, nil
}

// Release gives an order's held stock back. Releasing an order that holds
// nothing (never reserved, released already, or confirmed) does nothing, so
// a retried release is harmless and a confirmed order's stock stays sold.
func (c *Catalog) Release(ctx context.Context, productID, orderID string) error {
	return c.settle(ctx, productID, orderID, true)
}

// Confirm makes an order's hold final: the stock stays taken and the hold
// is dropped. orders confirms once the order is stored. Confirming an order
// that holds nothing does nothing.
func (c *Catalog) Confirm(ctx context.Context, productID, orderID string) error {
	return c.settle(ctx, productID, orderID, false)
}

// settle drops an order's hold, giving its stock back if restock is set.
func (c *Catalog) settle(ctx context.Context, productID, orderID string, restock bool) error {
	if !api.ValidID(productID) || !api.ValidID(orderID) {
		return api.Errorf(api.CodeNotFound, "no reservation of product %q for order %q", productID, orderID)
	}
	unlock := c.locks.Lock(productID)
	defer unlock()
	_, err := c.store.ChangeProduct(ctx, productID, func(p *productRecord) error {
		h, ok := p.Holds[orderID]
		if !ok {
			return ErrUnchanged
		}
		if restock {
			p.Stock += h.Quantity
		}
		p.Holds = cloneHolds(p.Holds)
		delete(p.Holds, orderID)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return api.Errorf(api.CodeNotFound, "no reservation of product %q for order %q", productID, orderID)
	}
	return contended(err, "product "+productID)
}

// cloneHolds copies holds (never nil), so a change function can be called
// again on a fresh read without seeing an earlier attempt's edits.
func cloneHolds(h map[string]Hold) map[string]Hold {
	if h == nil {
		return map[string]Hold{}
	}
	return maps.Clone(h)
}
