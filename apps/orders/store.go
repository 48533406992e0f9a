package main

import (
	"context"
	"errors"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// stateOrders keeps orders in the orders service's own store as "order/<id>".
// orderstore is configured with Dapr's transactional outbox: each write below
// is one transaction holding the order and, as its outbox projection, the
// event to publish; Dapr publishes the event only if the transaction commits.
type stateOrders struct{ store *sidecar.Store }

// projection marks the second write of a transaction as the outbox payload
// for the key: it is published instead of the stored value, and not stored.
var projection = map[string]string{"outbox.projection": "true", "contentType": "application/json"}

var jsonValue = map[string]string{"contentType": "application/json"}

// Dapr stages the outbox event before it runs the transaction, and in Dapr
// 1.18.2 a staged event whose transaction failed is re-checked in a busy
// loop that never gives up (its backoff has no stop value), stalling one
// pub/sub worker of the sidecar for good. Checking that the store answers
// first keeps an outage of PostgreSQL from staging events at all.
func (s stateOrders) storeAnswers(ctx context.Context) error {
	return s.store.Ping(ctx)
}

func (s stateOrders) Create(ctx context.Context, o Order, ev Event) error {
	if err := s.storeAnswers(ctx); err != nil {
		return err
	}
	key := "order/" + o.ID
	return s.store.Transact(ctx, nil,
		sidecar.Op{Key: key, Value: o, Meta: telemetry.WithTraceMetadata(ctx, jsonValue)}, // the event joins the order's trace
		sidecar.Op{Key: key, Value: ev, Meta: projection},
	)
}

func (s stateOrders) Update(ctx context.Context, o Order, etag string, ev Event) error {
	if err := s.storeAnswers(ctx); err != nil {
		return err
	}
	key := "order/" + o.ID
	err := s.store.Transact(ctx, nil,
		sidecar.Op{Key: key, Value: o, ETag: etag, Meta: telemetry.WithTraceMetadata(ctx, jsonValue)},
		sidecar.Op{Key: key, Value: ev, ETag: etag, Meta: projection},
	)
	if err == nil {
		return nil
	}
	// Inside a transaction an ETag mismatch comes back as an internal
	// error: look whether the order moved on.
	if _, now, getErr := s.Order(ctx, o.ID); getErr == nil && now != etag {
		return errors.Join(ErrConflict, err)
	}
	return err
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

// Save is a single ETag-checked write, outside any transaction, so the
// outbox publishes nothing for it.
func (s stateOrders) Save(ctx context.Context, o Order, etag string) error {
	err := s.store.Update(ctx, "order/"+o.ID, o, etag)
	if errors.Is(err, sidecar.ErrConflict) {
		return errors.Join(ErrConflict, err)
	}
	return err
}
