package main

import (
	"context"
	"errors"
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
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	ProductID  string    `json:"product_id"`
	Quantity   int64     `json:"quantity"`
	TotalCents int64     `json:"total_cents"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
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

// Product is what orders needs to know of a product.
type Product struct {
	ID         string `json:"id"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

// Errors the services orders depends on report.
var (
	ErrUnknownUser       = errors.New("unknown user")
	ErrUnknownProduct    = errors.New("unknown product")
	ErrInsufficientStock = errors.New("insufficient stock")
	ErrNotFound          = errors.New("order not found")
)

// UserDirectory tells whether a user exists (ErrUnknownUser if not).
type UserDirectory interface {
	CheckUser(ctx context.Context, id string) error
}

// Catalog reads products and reserves their stock for orders. Reserve and
// Release are idempotent per order id.
type Catalog interface {
	Product(ctx context.Context, id string) (Product, error)
	Reserve(ctx context.Context, productID, orderID string, quantity int64) error
	Release(ctx context.Context, productID, orderID string) error
}

// OrderStore keeps orders.
type OrderStore interface {
	Create(ctx context.Context, o Order) error
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
	p, err := d.Catalog.Product(ctx, in.ProductID)
	if err != nil {
		if errors.Is(err, ErrUnknownProduct) {
			return Order{}, api.Errorf(api.CodeUnknownProduct, "product %s does not exist", in.ProductID)
		}
		return Order{}, err
	}
	qty := *in.Quantity
	if p.Stock < qty {
		return Order{}, insufficient(in.ProductID, p.Stock, qty)
	}

	o := Order{
		ID:         d.NewID(),
		UserID:     in.UserID,
		ProductID:  in.ProductID,
		Quantity:   qty,
		TotalCents: p.PriceCents * qty,
		Status:     StatusCreated,
		CreatedAt:  d.Now(),
	}
	if err := d.Catalog.Reserve(ctx, o.ProductID, o.ID, qty); err != nil {
		switch {
		case errors.Is(err, ErrInsufficientStock):
			return Order{}, api.Errorf(api.CodeInsufficientStock, "product %s has fewer than %d in stock", in.ProductID, qty)
		case errors.Is(err, ErrUnknownProduct):
			return Order{}, api.Errorf(api.CodeUnknownProduct, "product %s does not exist", in.ProductID)
		}
		// The reservation may have been made even though no answer came
		// back (a timeout): release it, which is a no-op if it was not.
		if relErr := d.Catalog.Release(context.WithoutCancel(ctx), o.ProductID, o.ID); relErr != nil {
			return Order{}, errors.Join(err, relErr)
		}
		return Order{}, err
	}
	if err := d.Orders.Create(ctx, o); err != nil {
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

func insufficient(productID string, stock, qty int64) error {
	return api.Errorf(api.CodeInsufficientStock, "product %s has %d in stock, %d asked", productID, stock, qty)
}
