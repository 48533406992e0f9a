package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/keylock"
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
	// ErrConflict is a final refusal of a change (a second payment of one
	// order); ErrBusy and ErrContended are passing: try again later.
	ErrConflict  = errors.New("order changed concurrently")
	ErrBusy      = errors.New("order is being shipped")
	ErrContended = errors.New("order contended")
	// ErrUnchanged, returned by a change function of OrderStore.Change,
	// means there is nothing to write.
	ErrUnchanged = errors.New("unchanged")
	// ErrNotWritten marks a failed write that surely changed nothing (it was
	// never sent: the store did not answer a check just before).
	ErrNotWritten = errors.New("not written")
)

// UserDirectory tells whether a user exists (ErrUnknownUser if not).
type UserDirectory interface {
	CheckUser(ctx context.Context, id string) error
}

// Catalog holds products' stock for orders. Reserve answers the unit price
// the stock was held at; ErrUnknownProduct and ErrInsufficientStock are its
// refusals. Confirm makes a hold final once the order is stored; Release
// gives it back. All three are idempotent per order id, and confirming or
// releasing what is not held does nothing.
type Catalog interface {
	Reserve(ctx context.Context, productID, orderID string, quantity int64) (priceCents int64, err error)
	Confirm(ctx context.Context, productID, orderID string) error
	Release(ctx context.Context, productID, orderID string) error
}

// orderRecord is an order as stored: the order and, while a ship is in
// progress, the claim of the request shipping it.
type orderRecord struct {
	Order
	ShipClaim *ShipClaim `json:"ship_claim,omitempty"`
}

// ShipClaim marks an order one ship request is shipping: the others answer
// 409 instead of racing it into a failing outbox transaction, and payment
// events wait. A claim older than the Desk's ShipLease belonged to a request
// that died; the next ship takes it over.
type ShipClaim struct {
	Token string    `json:"token"`
	At    time.Time `json:"at"`
}

// OrderStore keeps orders. Create and Ship store an order together with its
// event (the outbox): the event is published if and only if the write
// commits. A failure wrapping ErrNotWritten surely wrote nothing; any other
// may have committed.
type OrderStore interface {
	Create(ctx context.Context, o Order, ev Event) error
	// Ship writes r, if the order still has etag, together with ev.
	Ship(ctx context.Context, r orderRecord, etag string, ev Event) error
	// Order reads an order with its version (ETag); ErrNotFound if none.
	Order(ctx context.Context, id string) (orderRecord, string, error)
	// Change applies change to the order as stored, publishing nothing,
	// re-reading and calling change again when another writer got there
	// first. change answers ErrUnchanged for no write; ErrNotFound when
	// there is no such order, ErrContended when too many writers raced.
	Change(ctx context.Context, id string, change func(r *orderRecord) error) (orderRecord, error)
}

// Steps of Place and Ship, for faults.ExitAt.
const (
	StepPlaceReserved = "orders.place.reserved"
	StepPlaceStored   = "orders.place.stored"
	StepShipClaimed   = "orders.ship.claimed"
)

// Desk places and reads orders.
type Desk struct {
	Users   UserDirectory
	Catalog Catalog
	Orders  OrderStore
	Now     func() time.Time
	NewID   func() string
	Log     *slog.Logger
	// PlaceDeadline bounds the time from the start of placing an order to
	// writing it: past it the order is not stored and its stock released.
	// products settles holds older than its HOLD_STALE_AFTER by asking
	// whether the order exists, which is safe only because no order is
	// stored that late. 0 means 20 s.
	PlaceDeadline time.Duration
	// ShipLease is how long a ship claim holds off others. 0 means 30 s.
	ShipLease time.Duration
	// WriteTimeout bounds one outbox write (the store check and the
	// transaction, with the sidecar's retries). Dapr stages the event
	// before the transaction and publishes it only if it finds the
	// transaction committed within about 11 s (a 1 s wait, then 10 s of
	// checks); a transaction that commits later has its event discarded. So
	// no write may run that long. 0 means 4 s.
	WriteTimeout time.Duration
	// Step is called after each step of a multi-step write (faults.ExitAt).
	Step func(name string)

	shipLocks keylock.Mutex
}

func (d *Desk) step(name string) {
	if d.Step != nil {
		d.Step(name)
	}
}

func (d *Desk) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

func (d *Desk) placeDeadline() time.Duration {
	if d.PlaceDeadline > 0 {
		return d.PlaceDeadline
	}
	return 20 * time.Second
}

// writeContext bounds one outbox write (see WriteTimeout).
func (d *Desk) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.WriteTimeout > 0 {
		return context.WithTimeout(ctx, d.WriteTimeout)
	}
	return context.WithTimeout(ctx, 4*time.Second)
}

func (d *Desk) shipLease() time.Duration {
	if d.ShipLease > 0 {
		return d.ShipLease
	}
	return 30 * time.Second
}

// Place checks the user and the product, holds the stock, stores the order
// with its event, and confirms the hold. An order that is not stored gives
// its stock back; an outcome that is not known (an answer lost) is read back
// first, never guessed: an order found stored is a success, and when even
// the read fails the hold is left to products' repair, which asks orders.
func (d *Desk) Place(ctx context.Context, in NewOrder) (Order, error) {
	if err := in.validate(); err != nil {
		return Order{}, err
	}
	start := d.Now()
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
		CreatedAt: start,
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
		// The stock may have been held even though no answer came back (a
		// timeout); the order is surely not stored: release, a no-op if
		// nothing is held.
		return Order{}, d.release(ctx, o, err)
	}
	d.step(StepPlaceReserved)
	if took := d.Now().Sub(start); took > d.placeDeadline() {
		return Order{}, d.release(ctx, o, fmt.Errorf("placing order %s took %s, past the %s deadline: %w", o.ID, took, d.placeDeadline(), api.ErrUnavailable))
	}
	o.TotalCents = price * qty
	wctx, cancel := d.writeContext(ctx)
	err = d.Orders.Create(wctx, o, eventFor(EventOrderCreated, o, o.CreatedAt))
	cancel()
	if err != nil {
		if errors.Is(err, ErrNotWritten) {
			return Order{}, d.release(ctx, o, err)
		}
		_, _, readErr := d.Orders.Order(context.WithoutCancel(ctx), o.ID)
		switch {
		case readErr == nil:
			d.log().WarnContext(ctx, "order stored although its write failed: the answer was lost", "order_id", o.ID, "err", err)
		case errors.Is(readErr, ErrNotFound):
			return Order{}, d.release(ctx, o, err)
		default:
			return Order{}, errors.Join(err, fmt.Errorf("read back order %s: %w", o.ID, readErr))
		}
	}
	d.step(StepPlaceStored)
	if err := d.Catalog.Confirm(context.WithoutCancel(ctx), o.ProductID, o.ID); err != nil {
		// The order is stored; products' repair confirms the hold later.
		d.log().WarnContext(ctx, "hold not confirmed; products will settle it", "order_id", o.ID, "product_id", o.ProductID, "err", err)
	}
	return o, nil
}

// release gives back the stock held for o, which is not stored, and returns
// cause joined with the release's own failure, if any.
func (d *Desk) release(ctx context.Context, o Order, cause error) error {
	if err := d.Catalog.Release(context.WithoutCancel(ctx), o.ProductID, o.ID); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// Order returns one order.
func (d *Desk) Order(ctx context.Context, id string) (Order, error) {
	if !api.ValidID(id) {
		return Order{}, api.Errorf(api.CodeNotFound, "order %q not found", id)
	}
	r, _, err := d.Orders.Order(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Order{}, api.Errorf(api.CodeNotFound, "order %q not found", id)
	}
	return r.Order, err
}

// Ship moves an order to shipped and publishes order_shipped. An order ships
// whether or not it is paid (it may be paid on delivery; a payment recorded
// later keeps it shipped).
//
// Racing ships must not race into the outbox: a failing outbox transaction
// stages an event that daprd 1.18.2 (unpatched) retries in a busy loop
// forever. So a ship first claims the order with a plain ETag-checked write,
// which fails cheaply, and only the claim's winner writes the transaction,
// from the version it claimed, which nothing else changes meanwhile (other
// ships see the claim, payment events wait for it). Within one replica ships
// of one order queue up before even trying.
func (d *Desk) Ship(ctx context.Context, id string) (Order, error) {
	if !api.ValidID(id) {
		return Order{}, api.Errorf(api.CodeNotFound, "order %q not found", id)
	}
	unlock := d.shipLocks.Lock(id)
	defer unlock()
	claim := ShipClaim{Token: d.NewID(), At: d.Now()}
	_, err := d.Orders.Change(ctx, id, func(r *orderRecord) error {
		switch {
		case r.Status == StatusShipped:
			return api.Errorf(api.CodeInvalidState, "order %s is already shipped", id)
		case r.ShipClaim != nil && claim.At.Sub(r.ShipClaim.At) < d.shipLease():
			return api.Errorf(api.CodeInvalidState, "order %s is being shipped by another request", id)
		}
		r.ShipClaim = &claim
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Order{}, api.Errorf(api.CodeNotFound, "order %q not found", id)
	case errors.Is(err, ErrContended):
		return Order{}, api.Errorf(api.CodeInvalidState, "order %s is being changed by other requests; read it again", id)
	case err != nil:
		return Order{}, err
	}
	d.step(StepShipClaimed)
	r, etag, err := d.Orders.Order(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if r.ShipClaim == nil || r.ShipClaim.Token != claim.Token {
		return Order{}, api.Errorf(api.CodeInvalidState, "order %s was changed by another request; read it again", id)
	}
	at := d.Now()
	if at.Sub(claim.At) > d.shipLease()/2 {
		return Order{}, fmt.Errorf("shipping order %s: claim held %s, too close to its lease: %w", id, at.Sub(claim.At), api.ErrUnavailable)
	}
	r.Status, r.ShippedAt, r.ShipClaim = StatusShipped, &at, nil
	wctx, cancel := d.writeContext(ctx)
	err = d.Orders.Ship(wctx, r, etag, eventFor(EventOrderShipped, r.Order, at))
	cancel()
	if err != nil {
		// Read back: a lost answer of a committed write is a success.
		now, _, readErr := d.Orders.Order(context.WithoutCancel(ctx), id)
		if readErr != nil || now.Status != StatusShipped || now.ShippedAt == nil || !now.ShippedAt.Equal(at) {
			return Order{}, err
		}
	}
	return r.Order, nil
}

// PaymentCompleted is the event payments publishes on topic `payments`.
type PaymentCompleted struct {
	Type        string `json:"type"`
	PaymentID   string `json:"payment_id"`
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
}

// MarkPaid records a completed payment on its order: a created order becomes
// paid, a shipped one stays shipped. Redelivered events change nothing; an
// event naming another payment for an order already paid is refused as a
// duplicate payment (ErrConflict, final). While a ship holds the order it
// answers ErrBusy, and after losing too many write races ErrContended: both
// passing, so the event is delivered again, never dropped.
func (d *Desk) MarkPaid(ctx context.Context, ev PaymentCompleted) error {
	now := d.Now()
	_, err := d.Orders.Change(ctx, ev.OrderID, func(r *orderRecord) error {
		switch {
		case r.PaymentID == ev.PaymentID:
			return ErrUnchanged // this payment is on record already
		case r.PaymentID != "":
			return fmt.Errorf("order %s is paid by %s, not %s: %w", r.ID, r.PaymentID, ev.PaymentID, ErrConflict)
		case r.ShipClaim != nil && now.Sub(r.ShipClaim.At) < d.shipLease():
			return fmt.Errorf("order %s: %w", r.ID, ErrBusy)
		}
		r.PaymentID, r.PaidAt = ev.PaymentID, &now
		if r.Status == StatusCreated {
			r.Status = StatusPaid
		}
		return nil
	})
	return err
}
