package main

import (
	"context"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateOrders keeps orders in the orders service's own store as "order/<id>".
type stateOrders struct{ store *sidecar.Store }

func (s stateOrders) Create(ctx context.Context, o Order) error {
	return s.store.Insert(ctx, "order/"+o.ID, o, 0)
}

func (s stateOrders) Order(ctx context.Context, id string) (Order, string, error) {
	it, found, err := s.store.Get(ctx, "order/"+id)
	if err != nil {
		return Order{}, "", err
	}
	if !found {
		return Order{}, "", ErrNotFound
	}
	var o Order
	return o, it.ETag, it.Decode(&o)
}
