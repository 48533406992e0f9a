package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// Order statuses.
const (
	StatusCreated = "created"
	StatusShipped = "shipped"
	StatusPaid    = "paid"
)

// Order is a user's order of one product.
type Order struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	ProductID  string     `json:"product_id"`
	Quantity   int64      `json:"quantity"`
	TotalCents int64      `json:"total_cents"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	ShippedAt  *time.Time `json:"shipped_at,omitempty"`
	PaidAt     *time.Time `json:"paid_at,omitempty"`
	PaymentID  string     `json:"payment_id,omitempty"`
}

// NewOrder is what a client sends to place an order.
type NewOrder struct {
	UserID    string `json:"user_id"`
	ProductID string `json:"product_id"`
	Quantity  *int64 `json:"quantity"`
}

const maxQuantity = 10_000

func (n NewOrder) validate() error {
	switch {
	case n.UserID == "":
		return api.Errorf(api.CodeInvalidRequest, "user_id is required")
	case !api.ValidID(n.UserID):
		return api.Errorf(api.CodeInvalidRequest, "user_id must be 1 to 64 letters, digits, '-' or '_'")
	case n.ProductID == "":
		return api.Errorf(api.CodeInvalidRequest, "product_id is required")
	case !api.ValidID(n.ProductID):
		return api.Errorf(api.CodeInvalidRequest, "product_id must be 1 to 64 letters, digits, '-' or '_'")
	case n.Quantity == nil:
		return api.Errorf(api.CodeInvalidRequest, "quantity is required")
	case *n.Quantity <= 0 || *n.Quantity > maxQuantity:
		return api.Errorf(api.CodeInvalidRequest, "quantity must be between 1 and %d", maxQuantity)
	}
	return nil
}

// Errors the services orders depends on report.
var (
	ErrUnknownUser       = errors.New("unknown user")
	ErrUnknownProduct    = errors.New("unknown product")
	ErrInsufficientStock = errors.New("insufficient stock")
	ErrNotFound          = errors.New("order not found")
	ErrConflict          = errors.New("order changed concurrently")
)

// UserDirectory tells whether a user exists (ErrUnknownUser if not).
type UserDirectory interface {
	CheckUser(ctx context.Context, id string) error
}

// Catalog reserves products' stock for orders. Reserve answers the unit
// price the reservation was made at; ErrUnknownProduct and
// ErrInsufficientStock are its refusals. Reserve and Release are idempotent
// per order id, and releasing what was never reserved does nothing.
type Catalog interface {
	Reserve(ctx context.Context, productID, orderID string, quantity int64) (priceCents int64, err error)
	Release(ctx context.Context, productID, orderID string) error
}

// OrderStore keeps orders. Create and Update store the order and its event
// atomically: the event is published if and only if the write commits.
// Update fails with ErrConflict when the order no longer has etag.
type OrderStore interface {
	Create(ctx context.Context, o Order, ev Event) error
	Update(ctx context.Context, o Order, etag string, ev Event) error
	// Save writes a change that publishes no event, if o still has etag.
	Save(ctx context.Context, o Order, etag string) error
	Order(ctx context.Context, id string) (Order, string, error)
}

// Desk places and reads orders.
type Desk struct {
	Users   UserDirectory
	Catalog Catalog
	Orders  OrderStore
	Now     func() time.Time
	NewID   func() string
}

// Place checks the user and the product, reserves the stock and stores the
// order. If the order cannot be stored, its reservation is released, so stock
// is never held by an order that does not exist.
func (d *Desk) Place(ctx context.Context, in NewOrder) (Order, error) {
	if err := in.validate(); err != nil {
		return Order{}, err
	}
	if err := d.Users.CheckUser(ctx, in.UserID); err != nil {
		if errors.Is(err, ErrUnknownUser) {
			return Order{}, api.Errorf(api.CodeUnknownUser, "user %s does not exist", in.UserID)
		}
		return Order{}, err
	}
	qty := *in.Quantity
	o := Order{
		ID:        d.NewID(),
		UserID:    in.UserID,
		ProductID: in.ProductID,
		Quantity:  qty,
		Status:    StatusCreated,
		CreatedAt: d.Now(),
	}
	price, err := d.Catalog.Reserve(ctx, o.ProductID, o.ID, qty)
	if err != nil {
		var refusal *api.Error
		switch {
		case errors.Is(err, ErrInsufficientStock):
			return Order{}, api.Errorf(api.CodeInsufficientStock, "product %s has fewer than %d in stock", in.ProductID, qty)
		case errors.Is(err, ErrUnknownProduct):
			return Order{}, api.Errorf(api.CodeUnknownProduct, "product %s does not exist", in.ProductID)
		case errors.As(err, &refusal):
			return Order{}, refusal
		}
		// The reservation may have been made even though no answer came
		// back (a timeout): release it, which is a no-op if it was not.
		if relErr := d.Catalog.Release(context.WithoutCancel(ctx), o.ProductID, o.ID); relErr != nil {
			return Order{}, errors.Join(err, relErr)
		}
		return Order{}, err
	}
	o.TotalCents = price * qty
	if err := d.Orders.Create(ctx, o, eventFor(EventOrderCreated, o, o.CreatedAt)); err != nil {
		if relErr := d.Catalog.Release(context.WithoutCancel(ctx), o.ProductID, o.ID); relErr != nil {
			return Order{}, errors.Join(err, relErr)
		}
		return Order{}, err
	}
	return o, nil
}

// Order returns one order.
func (d *Desk) Order(ctx context.Context, id string) (Order, error) {
	if !api.ValidID(id) {
		return Order{}, api.Errorf(api.CodeNotFound, "order %q not found", id)
	}
	o, _, err := d.Orders.Order(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Order{}, api.Errorf(api.CodeNotFound, "order %q not found", id)
	}
	return o, err
}

// Ship moves a created order to shipped and publishes order_shipped. Of two
// concurrent ships of one order, the ETag lets exactly one through.
func (d *Desk) Ship(ctx context.Context, id string) (Order, error) {
	if !api.ValidID(id) {
		return Order{}, api.Errorf(api.CodeNotFound, "order %q not found", id)
	}
	o, etag, err := d.Orders.Order(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Order{}, api.Errorf(api.CodeNotFound, "order %q not found", id)
	}
	if err != nil {
		return Order{}, err
	}
	if o.Status == StatusShipped {
		return Order{}, api.Errorf(api.CodeInvalidState, "order %s is already shipped", id)
	}
	// A paid order keeps its payment on record while it ships.
	o.Status = StatusShipped
	at := d.Now()
	o.ShippedAt = &at
	if err := d.Orders.Update(ctx, o, etag, eventFor(EventOrderShipped, o, at)); err != nil {
		if errors.Is(err, ErrConflict) {
			return Order{}, api.Errorf(api.CodeInvalidState, "order %s was changed by another request; read it again", id)
		}
		return Order{}, err
	}
	return o, nil
}

// PaymentCompleted is the event payments publishes on topic `payments`.
type PaymentCompleted struct {
	Type        string `json:"type"`
	PaymentID   string `json:"payment_id"`
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
}

// MarkPaid records a completed payment on its order: a created order becomes
// paid. Redelivered events change nothing; an event naming another payment
// for an order already paid is refused as a duplicate payment.
func (d *Desk) MarkPaid(ctx context.Context, ev PaymentCompleted) error {
	for attempt := 1; ; attempt++ {
		o, etag, err := d.Orders.Order(ctx, ev.OrderID)
		if err != nil {
			return err
		}
		switch {
		case o.PaymentID == ev.PaymentID:
			return nil // this payment is on record already
		case o.PaymentID != "":
			return fmt.Errorf("order %s is paid by %s, not %s: %w", o.ID, o.PaymentID, ev.PaymentID, ErrConflict)
		}
		at := d.Now()
		o.PaymentID, o.PaidAt = ev.PaymentID, &at
		if o.Status == StatusCreated {
			o.Status = StatusPaid
		}
		err = d.Orders.Save(ctx, o, etag)
		if !errors.Is(err, ErrConflict) || attempt == 5 {
			return err
		}
	}
}
