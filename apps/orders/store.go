package main

import (
	"context"
	"errors"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
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
		return errors.Join(ErrNotWritten, err)
	}
	key := "order/" + o.ID
	return s.store.Transact(ctx, nil,
		sidecar.Op{Key: key, Value: orderRecord{Order: o}, Meta: jsonValue},
		sidecar.Op{Key: key, Value: ev, Meta: projection},
	)
}

func (s stateOrders) Ship(ctx context.Context, r orderRecord, etag string, ev Event) error {
	if err := s.storeAnswers(ctx); err != nil {
		return errors.Join(ErrNotWritten, err)
	}
	key := "order/" + r.ID
	return s.store.Transact(ctx, nil,
		sidecar.Op{Key: key, Value: r, ETag: etag, Meta: jsonValue},
		sidecar.Op{Key: key, Value: ev, ETag: etag, Meta: projection},
	)
}

func (s stateOrders) Order(ctx context.Context, id string) (orderRecord, string, error) {
	var r orderRecord
	etag, err := s.store.Read(ctx, "order/"+id, &r)
	if errors.Is(err, sidecar.ErrNotFound) {
		return orderRecord{}, "", ErrNotFound
	}
	return r, etag, err
}

// Change is a read-modify-write of single ETag-checked writes, outside any
// transaction, so the outbox publishes nothing for it and a lost race costs
// a re-read, not a staged event.
func (s stateOrders) Change(ctx context.Context, id string, change func(r *orderRecord) error) (orderRecord, error) {
	r, err := sidecar.Modify(ctx, s.store, "order/"+id, func(r *orderRecord, found bool) error {
		if !found {
			return ErrNotFound
		}
		err := change(r)
		if errors.Is(err, ErrUnchanged) {
			return sidecar.ErrUnchanged
		}
		return err
	})
	if errors.Is(err, sidecar.ErrContended) {
		return orderRecord{}, errors.Join(ErrContended, err)
	}
	return r, err
}
