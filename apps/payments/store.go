package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// statePayments keeps payments in a Dapr state store with the transactional
// outbox configured to publish to the payments topic (paymentstore):
//   - "idempotency/<sha256 of the key>": the KeyRecord of an Idempotency-Key,
//     expiring after the Cashier's keyTTL. Updates carry no TTL: the Redis
//     store keeps a key's expiry when it is rewritten.
//   - "order/<order id>": the id of the one payment of an order.
//   - "payment/<id>": a payment, written only by StorePayment's transaction,
//     which publishes its event through the outbox.
//   - "pending/<0-f>": the keys whose payment is under way, spread over
//     pendingShards small lists by the first hex digit of the key hash, so
//     concurrent payments rarely write the same list and none grows with
//     the number of payments ever made.
//
// Every single write is first-write (see sidecar.Store), so the inserts are
// claims and the updates are ETag-checked.
type statePayments struct{ store *sidecar.Store }

// pendingShards is how many lists the pending keys are spread over.
const pendingShards = 16

// orderClaim is the value of "order/<order id>".
type orderClaim struct {
	PaymentID string `json:"payment_id"`
}

// projection marks the second write of the outbox transaction as the event
// published for the key, instead of the stored value (and it is not stored).
var projection = map[string]string{"outbox.projection": "true", "contentType": "application/json"}

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

// CompleteKey marks the key record completed, if it names paymentID; a
// completed record is left as it is.
func (s statePayments) CompleteKey(ctx context.Context, keyHash, paymentID string, at time.Time) error {
	_, err := sidecar.Modify(ctx, s.store, "idempotency/"+keyHash, func(rec *KeyRecord, found bool) error {
		switch {
		case !found:
			return fmt.Errorf("complete payment %s: %w", paymentID, ErrNotFound)
		case rec.Payment.ID != paymentID:
			return fmt.Errorf("complete payment %s: the idempotency key names payment %s", paymentID, rec.Payment.ID)
		case rec.Status == keyCompleted:
			return sidecar.ErrUnchanged
		}
		rec.Status, rec.TouchedAt = keyCompleted, at
		return nil
	})
	return err
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

// StorePayment is one state transaction holding exactly one write, the
// payment, unconditional: Dapr's outbox publishes one event per written key
// of a transaction, and on Redis an ETag check failing inside a transaction
// neither stops the other writes nor the outbox's marker (the event would go
// out for a write that failed). The payment's contents are fixed by its key
// record, so writing it twice writes the same thing. Checking that the store
// answers first keeps an outage from staging an event whose transaction then
// fails (Dapr 1.18.2 re-checks such an event forever).
func (s statePayments) StorePayment(ctx context.Context, p Payment, ev Event) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	key := "payment/" + p.ID
	return s.store.Transact(ctx, nil,
		sidecar.Op{Key: key, Value: p},
		sidecar.Op{Key: key, Value: ev, Meta: projection},
	)
}

func (s statePayments) Payment(ctx context.Context, id string) (Payment, error) {
	var p Payment
	_, err := s.get(ctx, "payment/"+id, &p)
	return p, err
}

func pendingKey(keyHash string) string {
	shard := 0
	if keyHash != "" {
		shard = int(keyHash[0]) % pendingShards
	}
	return fmt.Sprintf("pending/%x", shard)
}

func (s statePayments) AddPending(ctx context.Context, keyHash string, since time.Time) error {
	_, err := sidecar.Modify(ctx, s.store, pendingKey(keyHash), func(list *[]PendingKey, _ bool) error {
		if slices.ContainsFunc(*list, func(pk PendingKey) bool { return pk.KeyHash == keyHash }) {
			return sidecar.ErrUnchanged
		}
		*list = append(*list, PendingKey{KeyHash: keyHash, Since: since})
		return nil
	})
	return err
}

func (s statePayments) RemovePending(ctx context.Context, keyHash string) error {
	_, err := sidecar.Modify(ctx, s.store, pendingKey(keyHash), func(list *[]PendingKey, _ bool) error {
		i := slices.IndexFunc(*list, func(pk PendingKey) bool { return pk.KeyHash == keyHash })
		if i < 0 {
			return sidecar.ErrUnchanged
		}
		*list = slices.Delete(*list, i, i+1)
		return nil
	})
	return err
}

func (s statePayments) Pending(ctx context.Context) ([]PendingKey, error) {
	keys := make([]string, pendingShards)
	for i := range keys {
		keys[i] = fmt.Sprintf("pending/%x", i)
	}
	lists, err := sidecar.ReadAll[[]PendingKey](ctx, s.store, keys)
	if err != nil {
		return nil, err
	}
	var out []PendingKey
	for _, l := range lists {
		out = append(out, l...)
	}
	return out, nil
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
