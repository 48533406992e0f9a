package main

import (
	"context"
	"errors"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateCatalog keeps the catalogue in a Dapr state store: "product/<id>",
// "products" (the index of ids, in order of creation) and
// "reservation/<order id>".
type stateCatalog struct{ store *sidecar.Store }

const indexKey = "products"

func (s stateCatalog) Product(ctx context.Context, id string) (Product, string, error) {
	var p Product
	etag, err := s.get(ctx, "product/"+id, &p)
	return p, etag, err
}

func (s stateCatalog) InsertProduct(ctx context.Context, p Product) error {
	return conflict(s.store.Insert(ctx, "product/"+p.ID, p, 0))
}

func (s stateCatalog) UpdateProduct(ctx context.Context, p Product, etag string) error {
	return conflict(s.store.Update(ctx, "product/"+p.ID, p, etag))
}

func (s stateCatalog) DeleteProduct(ctx context.Context, id string) error {
	return conflict(s.store.Delete(ctx, "product/"+id, ""))
}

func (s stateCatalog) Index(ctx context.Context) ([]string, string, error) {
	var ids []string
	etag, err := s.get(ctx, indexKey, &ids)
	if errors.Is(err, ErrNotFound) {
		return nil, "", nil
	}
	return ids, etag, err
}

func (s stateCatalog) SaveIndex(ctx context.Context, ids []string, etag string) error {
	if etag == "" {
		return conflict(s.store.Insert(ctx, indexKey, ids, 0))
	}
	return conflict(s.store.Update(ctx, indexKey, ids, etag))
}

func (s stateCatalog) Products(ctx context.Context, ids []string) ([]Product, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = "product/" + id
	}
	return sidecar.ReadAll[Product](ctx, s.store, keys)
}

func (s stateCatalog) Reservation(ctx context.Context, orderID string) (Reservation, string, error) {
	var r Reservation
	etag, err := s.get(ctx, "reservation/"+orderID, &r)
	return r, etag, err
}

func (s stateCatalog) InsertReservation(ctx context.Context, r Reservation) error {
	return conflict(s.store.Insert(ctx, "reservation/"+r.OrderID, r, 0))
}

func (s stateCatalog) DeleteReservation(ctx context.Context, orderID, etag string) error {
	return conflict(s.store.Delete(ctx, "reservation/"+orderID, etag))
}

func (s stateCatalog) get(ctx context.Context, key string, v any) (string, error) {
	etag, err := s.store.Read(ctx, key, v)
	if errors.Is(err, sidecar.ErrNotFound) {
		return "", ErrNotFound
	}
	return etag, err
}

// conflict turns the sidecar's conflict into the domain's.
func conflict(err error) error {
	if errors.Is(err, sidecar.ErrConflict) {
		return errors.Join(ErrConflict, err)
	}
	return err
}
