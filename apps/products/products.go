package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/keylock"
)

// Product is an item for sale with the stock still available.
type Product struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	PriceCents int64     `json:"price_cents"`
	Stock      int64     `json:"stock"`
	CreatedAt  time.Time `json:"created_at"`
}

// productRecord is a product as stored: the product and the stock it holds
// for orders not yet confirmed (see Hold). Stock and holds change in one
// write of one key, so no crash can take stock without recording for whom.
type productRecord struct {
	Product
	Holds map[string]Hold `json:"holds,omitempty"`
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

// ErrUnchanged, returned by a change function of ProductStore.ChangeProduct,
// means there is nothing to write.
var ErrUnchanged = errors.New("unchanged")

// ErrContended is returned by ProductStore.ChangeProduct when too many
// writers changed the product at once for the change to get through.
var ErrContended = errors.New("contended")

// ProductStore keeps products and the catalogue.
type ProductStore interface {
	Product(ctx context.Context, id string) (productRecord, error)
	InsertProduct(ctx context.Context, p productRecord) error
	// ChangeProduct applies change to the product as stored, writing it
	// back only if nobody changed it meanwhile (re-reading and calling
	// change again otherwise). change answers ErrUnchanged for no write.
	ChangeProduct(ctx context.Context, id string, change func(p *productRecord) error) (productRecord, error)
	Products(ctx context.Context, ids []string) ([]productRecord, error)

	// ClaimCatalogPosition takes the next free position of the catalogue;
	// SetCatalogEntry writes a product id at a claimed position.
	ClaimCatalogPosition(ctx context.Context) (int64, error)
	SetCatalogEntry(ctx context.Context, pos int64, id string) error
	// CatalogEntries reads up to limit positions from pos on: the ids
	// found (positions claimed but never written are skipped), the
	// position after the last one read, and whether there are more.
	CatalogEntries(ctx context.Context, pos int64, limit int) (ids []string, next int64, more bool, err error)
}

// Catalog is the products service's domain: it adds and lists products and
// moves stock in and out of holds without ever overselling.
type Catalog struct {
	store ProductStore
	now   func() time.Time
	newID func() string
	locks keylock.Mutex
	// step is called after each step of a multi-step write, for the tests
	// that kill the process between two steps (faults.ExitAt).
	step func(name string)
}

// NewCatalog returns a Catalog over store.
func NewCatalog(store ProductStore, now func() time.Time, newID func() string, step func(string)) *Catalog {
	if step == nil {
		step = func(string) {}
	}
	return &Catalog{store: store, now: now, newID: newID, step: step}
}

// Steps of Add, for faults.ExitAt.
const (
	StepCatalogPositionClaimed = "products.add.position-claimed"
	StepCatalogEntryWritten    = "products.add.entry-written"
)

// Add stores a new product and lists it in the catalogue. The catalogue
// entry is written first: a crash after it leaves an entry naming no
// product, which listing skips; a product is never stored unlisted.
func (c *Catalog) Add(ctx context.Context, in NewProduct) (Product, error) {
	in, err := in.validate()
	if err != nil {
		return Product{}, err
	}
	p := Product{ID: c.newID(), Name: in.Name, PriceCents: *in.PriceCents, Stock: *in.Stock, CreatedAt: c.now()}
	pos, err := c.store.ClaimCatalogPosition(ctx)
	if err != nil {
		return Product{}, contended(err, "the catalogue")
	}
	c.step(StepCatalogPositionClaimed)
	if err := c.store.SetCatalogEntry(ctx, pos, p.ID); err != nil {
		return Product{}, contended(err, "the catalogue")
	}
	c.step(StepCatalogEntryWritten)
	if err := c.store.InsertProduct(ctx, productRecord{Product: p}); err != nil {
		return Product{}, err
	}
	return p, nil
}

// Page is one page of a list: its items and the cursor of the next page
// ("" on the last).
type Page[T any] struct {
	Items []T
	Next  string
}

// Paging limits: a client asks for 1 to maxPageLimit products a page.
const (
	defaultPageLimit = 50
	maxPageLimit     = 100
)

// List returns up to limit products from cursor on, in the order they were
// added. limit "" means defaultPageLimit; cursor "" means the start, else
// a cursor a previous page handed out.
func (c *Catalog) List(ctx context.Context, limit, cursor string) (Page[Product], error) {
	n := defaultPageLimit
	if limit != "" {
		v, err := strconv.Atoi(limit)
		if err != nil || v < 1 || v > maxPageLimit {
			return Page[Product]{}, api.Errorf(api.CodeInvalidRequest, "limit must be a whole number from 1 to %d", maxPageLimit)
		}
		n = v
	}
	var pos int64
	if cursor != "" {
		v, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || v < 0 {
			return Page[Product]{}, api.Errorf(api.CodeInvalidRequest, "cursor is not one this API handed out")
		}
		pos = v
	}
	ids, next, more, err := c.store.CatalogEntries(ctx, pos, n)
	if err != nil {
		return Page[Product]{}, err
	}
	recs, err := c.store.Products(ctx, ids)
	if err != nil {
		return Page[Product]{}, err
	}
	page := Page[Product]{Items: make([]Product, 0, len(recs))}
	for _, r := range recs {
		page.Items = append(page.Items, r.Product)
	}
	if more {
		page.Next = strconv.FormatInt(next, 10)
	}
	return page, nil
}

// Get returns one product.
func (c *Catalog) Get(ctx context.Context, id string) (Product, error) {
	if !api.ValidID(id) {
		return Product{}, api.Errorf(api.CodeNotFound, "product %q not found", id)
	}
	r, err := c.store.Product(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Product{}, api.Errorf(api.CodeNotFound, "product %q not found", id)
	}
	return r.Product, err
}

// contended turns a spent retry budget into a passing 409 for the client.
func contended(err error, what string) error {
	if errors.Is(err, ErrContended) {
		return errors.Join(api.Errorf(api.CodeConflict, "%s is being changed by too many requests at once; try again", what), err)
	}
	return err
}
