package main

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// Product is an item for sale with the stock still available.
type Product struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	PriceCents int64     `json:"price_cents"`
	Stock      int64     `json:"stock"`
	CreatedAt  time.Time `json:"created_at"`
}

// NewProduct is what a client sends to add a product. Pointers tell a missing
// field from a zero.
type NewProduct struct {
	Name       string `json:"name"`
	PriceCents *int64 `json:"price_cents"`
	Stock      *int64 `json:"stock"`
}

// Limits on a product.
const (
	maxNameLen    = 200
	maxPriceCents = 100_000_000 // one million in the currency's main unit
	maxStock      = 1_000_000_000
)

func (n NewProduct) validate() (NewProduct, error) {
	n.Name = strings.TrimSpace(n.Name)
	switch {
	case n.Name == "":
		return n, api.Errorf(api.CodeInvalidRequest, "name is required")
	case utf8.RuneCountInString(n.Name) > maxNameLen:
		return n, api.Errorf(api.CodeInvalidRequest, "name is longer than %d characters", maxNameLen)
	case n.PriceCents == nil:
		return n, api.Errorf(api.CodeInvalidRequest, "price_cents is required")
	case *n.PriceCents <= 0 || *n.PriceCents > maxPriceCents:
		return n, api.Errorf(api.CodeInvalidRequest, "price_cents must be between 1 and %d", maxPriceCents)
	case n.Stock == nil:
		return n, api.Errorf(api.CodeInvalidRequest, "stock is required")
	case *n.Stock < 0 || *n.Stock > maxStock:
		return n, api.Errorf(api.CodeInvalidRequest, "stock must be between 0 and %d", maxStock)
	}
	return n, nil
}

// ErrNotFound is returned by a ProductStore for an unknown key.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a ProductStore when a write lost an
// optimistic-concurrency race (the ETag changed, or the key already exists).
var ErrConflict = errors.New("conflict")

// ProductStore keeps products, the catalogue index and reservations, each
// read with a version (ETag) and written only if that version still holds.
type ProductStore interface {
	Product(ctx context.Context, id string) (Product, string, error)
	InsertProduct(ctx context.Context, p Product) error
	UpdateProduct(ctx context.Context, p Product, etag string) error
	DeleteProduct(ctx context.Context, id string) error
	Index(ctx context.Context) ([]string, string, error) // ids, etag ("" when there is no index yet)
	SaveIndex(ctx context.Context, ids []string, etag string) error
	Products(ctx context.Context, ids []string) ([]Product, error)

	Reservation(ctx context.Context, orderID string) (Reservation, string, error)
	InsertReservation(ctx context.Context, r Reservation) error
	DeleteReservation(ctx context.Context, orderID, etag string) error
}

// Catalog is the products service's domain: it adds and lists products and
// moves stock in and out of reservations without ever overselling.
type Catalog struct {
	store ProductStore
	now   func() time.Time
	newID func() string
	locks *keyedMutex
	// attempts bounds the optimistic-concurrency retries of one write.
	attempts int
	// backoff is the pause before a retry, times the attempt number.
	backoff time.Duration
}

// NewCatalog returns a Catalog over store.
func NewCatalog(store ProductStore, now func() time.Time, newID func() string) *Catalog {
	return &Catalog{store: store, now: now, newID: newID, locks: newKeyedMutex(), attempts: 20, backoff: 2 * time.Millisecond}
}

// Add stores a new product and lists it in the catalogue index. If the index
// cannot be updated the product is removed again, so no product is half added.
func (c *Catalog) Add(ctx context.Context, in NewProduct) (Product, error) {
	in, err := in.validate()
	if err != nil {
		return Product{}, err
	}
	p := Product{ID: c.newID(), Name: in.Name, PriceCents: *in.PriceCents, Stock: *in.Stock, CreatedAt: c.now()}
	if err := c.store.InsertProduct(ctx, p); err != nil {
		return Product{}, err
	}
	err = c.retryOnConflict(ctx, "catalogue index", func() error {
		ids, etag, err := c.store.Index(ctx)
		if err != nil {
			return err
		}
		return c.store.SaveIndex(ctx, append(ids, p.ID), etag)
	})
	if err != nil {
		if delErr := c.store.DeleteProduct(context.WithoutCancel(ctx), p.ID); delErr != nil {
			return Product{}, errors.Join(err, delErr)
		}
		return Product{}, err
	}
	return p, nil
}

// List returns every product in the order they were added.
func (c *Catalog) List(ctx context.Context) ([]Product, error) {
	ids, _, err := c.store.Index(ctx)
	if err != nil {
		return nil, err
	}
	return c.store.Products(ctx, ids)
}

// Get returns one product.
func (c *Catalog) Get(ctx context.Context, id string) (Product, error) {
	if !api.ValidID(id) {
		return Product{}, api.Errorf(api.CodeNotFound, "product %q not found", id)
	}
	p, _, err := c.store.Product(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Product{}, api.Errorf(api.CodeNotFound, "product %q not found", id)
	}
	return p, err
}

// retryOnConflict runs write until it succeeds, fails with something other
// than ErrConflict, or has lost c.attempts races in a row.
func (c *Catalog) retryOnConflict(ctx context.Context, what string, write func() error) error {
	for attempt := 1; ; attempt++ {
		err := write()
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if attempt >= c.attempts {
			return api.Errorf(api.CodeConflict, "%s is being changed by too many requests at once; try again", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * c.backoff):
		}
	}
}
