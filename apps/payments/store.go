package main

import (
	"context"
	"errors"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// statePayments keeps payments in a Dapr state store:
//   - "idempotency/<sha256 of the key>": the KeyRecord of an Idempotency-Key,
//     expiring after the Cashier's keyTTL. Updates carry no TTL: the Redis
//     store keeps a key's expiry when it is rewritten.
//   - "order/<order id>": the id of the one payment of an order.
//   - "payment/<id>": a payment.
//
// Every write is first-write (see sidecar.Store), so the inserts are claims
// and the updates are ETag-checked.
type statePayments struct{ store *sidecar.Store }

// orderClaim is the value of "order/<order id>".
type orderClaim struct {
	PaymentID string `json:"payment_id"`
}

func (s statePayments) ClaimKey(ctx context.Context, keyHash string, rec KeyRecord, ttl time.Duration) error {
	return conflict(s.store.Insert(ctx, "idempotency/"+keyHash, rec, ttl))
}

func (s statePayments) Key(ctx context.Context, keyHash string) (KeyRecord, string, error) {
	var rec KeyRecord
	etag, err := s.get(ctx, "idempotency/"+keyHash, &rec)
	return rec, etag, err
}

func (s statePayments) UpdateKey(ctx context.Context, keyHash string, rec KeyRecord, etag string) error {
	return conflict(s.store.Update(ctx, "idempotency/"+keyHash, rec, etag))
}

func (s statePayments) DeleteKey(ctx context.Context, keyHash, etag string) error {
	return conflict(s.store.Delete(ctx, "idempotency/"+keyHash, etag))
}

func (s statePayments) ClaimOrder(ctx context.Context, orderID, paymentID string) error {
	return conflict(s.store.Insert(ctx, "order/"+orderID, orderClaim{PaymentID: paymentID}, 0))
}

func (s statePayments) OrderPayment(ctx context.Context, orderID string) (string, error) {
	var claim orderClaim
	_, err := s.get(ctx, "order/"+orderID, &claim)
	return claim.PaymentID, err
}

func (s statePayments) InsertPayment(ctx context.Context, p Payment) error {
	return conflict(s.store.Insert(ctx, "payment/"+p.ID, p, 0))
}

func (s statePayments) Payment(ctx context.Context, id string) (Payment, error) {
	var p Payment
	_, err := s.get(ctx, "payment/"+id, &p)
	return p, err
}

func (s statePayments) get(ctx context.Context, key string, v any) (string, error) {
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
