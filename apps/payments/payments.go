package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// StatusCompleted is the status of every stored payment: a payment is only
// stored once its order has been checked, and it is never undone.
const StatusCompleted = "completed"

// Payment is money taken for one order.
type Payment struct {
	ID          string    `json:"id"`
	OrderID     string    `json:"order_id"`
	AmountCents int64     `json:"amount_cents"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
}

// sameAs reports whether p and q are one payment, whatever the JSON round
// trip did to the time's representation.
func (p Payment) sameAs(q Payment) bool {
	return p.ID == q.ID && p.OrderID == q.OrderID && p.AmountCents == q.AmountCents &&
		p.Status == q.Status && p.CreatedAt.Equal(q.CreatedAt)
}

// PaymentRequest is what a client sends to pay an order. The pointer tells a
// missing amount from a zero one.
type PaymentRequest struct {
	OrderID     string `json:"order_id"`
	AmountCents *int64 `json:"amount_cents"`
}

func (r PaymentRequest) validate() error {
	switch {
	case r.OrderID == "":
		return api.Errorf(api.CodeInvalidRequest, "order_id is required")
	case !api.ValidID(r.OrderID):
		return api.Errorf(api.CodeInvalidRequest, "order_id must be 1 to 64 letters, digits, '-' or '_'")
	case r.AmountCents == nil:
		return api.Errorf(api.CodeInvalidRequest, "amount_cents is required")
	case *r.AmountCents <= 0:
		return api.Errorf(api.CodeInvalidRequest, "amount_cents must be a positive number of cents")
	}
	return nil
}

// fingerprint identifies what a request asks for, so that a retry with the
// same Idempotency-Key can be told apart from another request reusing it.
func (r PaymentRequest) fingerprint() string {
	sum := sha256.Sum256([]byte(r.OrderID + "\x00" + strconv.FormatInt(*r.AmountCents, 10)))
	return hex.EncodeToString(sum[:])
}

// maxIdempotencyKeyLen bounds the Idempotency-Key header.
const maxIdempotencyKeyLen = 128

// validateIdempotencyKey accepts 1 to 128 printable ASCII characters without
// spaces (0x21 to 0x7E): enough for a UUID or any token a client generates,
// and nothing that could be read two ways.
func validateIdempotencyKey(key string) error {
	switch {
	case key == "":
		return api.Errorf(api.CodeInvalidRequest, "the Idempotency-Key header is required")
	case len(key) > maxIdempotencyKeyLen:
		return api.Errorf(api.CodeInvalidRequest, "the Idempotency-Key header is longer than %d characters", maxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7E {
			return api.Errorf(api.CodeInvalidRequest, "the Idempotency-Key header must hold only printable ASCII characters without spaces")
		}
	}
	return nil
}

// hashKey is how an Idempotency-Key is known to the store: the client's key
// is never stored, and its hash is safe in a state key whatever it holds.
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// States of a KeyRecord.
const (
	keyPending   = "pending"
	keyCompleted = "completed"
)

// KeyRecord is what an Idempotency-Key has led to. It is claimed pending,
// with the payment it will create already named, before anything else
// happens; it turns completed once that payment is stored and announced.
type KeyRecord struct {
	Fingerprint string `json:"fingerprint"`
	Status      string `json:"status"`
	// Payment is the payment this key creates. Every attempt that works on
	// the key creates this one, with this id, and no other.
	Payment Payment `json:"payment"`
	// TouchedAt is when an attempt last started working on the key; a
	// pending record untouched for longer than Cashier.staleAfter is
	// abandoned, and the next request with the key resumes it.
	TouchedAt time.Time `json:"touched_at"`
}

// Errors a PaymentStore and an OrderDirectory report.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrUnknownOrder = errors.New("unknown order")
)

// PaymentStore keeps idempotency keys (by their hash), order claims,
// payments, and the list of keys being worked on. The key and order claims
// are insert-only: of two concurrent inserts of one key, one fails with
// ErrConflict. UpdateKey and DeleteKey fail with ErrConflict when the record
// no longer has etag. Reads answer ErrNotFound for a missing key.
type PaymentStore interface {
	ClaimKey(ctx context.Context, keyHash string, rec KeyRecord, ttl time.Duration) error
	Key(ctx context.Context, keyHash string) (KeyRecord, string, error)
	UpdateKey(ctx context.Context, keyHash string, rec KeyRecord, etag string) error
	// CompleteKey marks a key record completed if it names paymentID (a
	// completed one stays as it is), re-reading it when another writer
	// touched it meanwhile.
	CompleteKey(ctx context.Context, keyHash, paymentID string, at time.Time) error
	DeleteKey(ctx context.Context, keyHash, etag string) error

	// ClaimOrder records paymentID as the one payment of an order.
	ClaimOrder(ctx context.Context, orderID, paymentID string) error
	// OrderPayment returns the id of the payment that claimed an order.
	OrderPayment(ctx context.Context, orderID string) (string, error)

	// StorePayment stores p and publishes ev in one transaction (Dapr's
	// transactional outbox): the event goes out if and only if the payment
	// is stored. Storing the same payment again stores nothing new but
	// publishes ev again; consumers recognise it by its payment id.
	StorePayment(ctx context.Context, p Payment, ev Event) error
	Payment(ctx context.Context, id string) (Payment, error)

	// AddPending lists a key whose payment is under way, for the
	// reconciler; RemovePending takes it off once the key is settled.
	// Both are idempotent.
	AddPending(ctx context.Context, keyHash string, since time.Time) error
	RemovePending(ctx context.Context, keyHash string) error
	Pending(ctx context.Context) ([]PendingKey, error)
}

// PendingKey is a key whose payment is under way, and since when.
type PendingKey struct {
	KeyHash string    `json:"key_hash"`
	Since   time.Time `json:"since"`
}

// Order statuses payments cares about.
const orderPaid = "paid"

// Order is what payments needs to know of an order.
type Order struct {
	ID         string `json:"id"`
	UserID     string `json:"user_id"`
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	TotalCents int64  `json:"total_cents"`
	Status     string `json:"status"`
}

// OrderDirectory looks orders up (ErrUnknownOrder if there is none).
type OrderDirectory interface {
	Order(ctx context.Context, id string) (Order, error)
}

// EventPaymentCompleted is the type of the event on the payments topic.
const EventPaymentCompleted = "payment_completed"

// Event is the payload of a payment event. OccurredAt is the payment's
// creation time, so a re-published event carries the same payload.
type Event struct {
	Type        string    `json:"type"`
	PaymentID   string    `json:"payment_id"`
	OrderID     string    `json:"order_id"`
	AmountCents int64     `json:"amount_cents"`
	OccurredAt  time.Time `json:"occurred_at"`
}

func completedEvent(p Payment) Event {
	return Event{Type: EventPaymentCompleted, PaymentID: p.ID, OrderID: p.OrderID, AmountCents: p.AmountCents, OccurredAt: p.CreatedAt}
}

// Cashier takes payments, at most one per Idempotency-Key and one per order.
type Cashier struct {
	store  PaymentStore
	orders OrderDirectory
	now    func() time.Time
	newID  func() string

	// keyTTL is how long the store keeps an idempotency key: a client
	// retrying later than that pays again (if the order still lets it).
	keyTTL time.Duration
	// attemptTimeout bounds one attempt at a payment (a request, or the
	// reconciler resuming a key). Storing the payment is not cut short by
	// it: the commit and the read-back that resolves a lost answer get
	// attemptTimeout/2 each on top, so one attempt ends within
	// 2 × attemptTimeout (worstAttempt).
	attemptTimeout time.Duration
	// staleAfter is how long a pending key may go untouched before it is
	// taken over and resumed (by a request with the same key and body, or
	// the reconciler). It must be longer than worstAttempt, or a takeover
	// could race an attempt still running.
	staleAfter time.Duration
	// pollEvery and pollFor bound how a request waits for another one with
	// its key to finish.
	pollEvery time.Duration
	pollFor   time.Duration
	// step is called after each step of a payment with its name; the
	// end-to-end tests make it exit the process there (faults.ExitAt).
	step func(name string)
}

// Steps of a payment, as Cashier.step names them.
const (
	StepKeyClaimed    = "payments.key-claimed"
	StepOrderClaimed  = "payments.order-claimed"
	StepPaymentStored = "payments.payment-stored"
)

// Production timings.
const (
	defaultAttemptTimeout = 10 * time.Second
	defaultStaleAfter     = 30 * time.Second
)

// NewCashier returns a Cashier with the production timings.
func NewCashier(store PaymentStore, orders OrderDirectory, now func() time.Time, newID func() string) *Cashier {
	return &Cashier{
		store:          store,
		orders:         orders,
		now:            now,
		newID:          newID,
		keyTTL:         24 * time.Hour,
		attemptTimeout: defaultAttemptTimeout,
		staleAfter:     defaultStaleAfter,
		pollEvery:      20 * time.Millisecond,
		pollFor:        3 * time.Second,
		step:           func(string) {},
	}
}

// SetTimings sets how long one attempt may take and when a pending key is
// stale; stale must exceed the worst case of an attempt.
func (c *Cashier) SetTimings(attempt, stale time.Duration) error {
	if attempt <= 0 || stale <= 2*attempt {
		return fmt.Errorf("a pending payment must turn stale (%s) only after the worst case of an attempt (2 × %s)", stale, attempt)
	}
	c.attemptTimeout, c.staleAfter = attempt, stale
	return nil
}

// worstAttempt is the longest one attempt can take.
func (c *Cashier) worstAttempt() time.Duration { return 2 * c.attemptTimeout }

// maxClaims bounds how often one request tries to claim its key: a claim is
// retried only when the record it lost to was removed meanwhile (the other
// request was refused), so the next claim normally wins.
const maxClaims = 3

// Pay takes the payment a request asks for under an Idempotency-Key.
// replayed is true when the key had already produced the payment: the same
// payment is answered and nothing happens again.
//
// The key is claimed insert-only before anything else, so of any number of
// concurrent requests with one key exactly one goes on. The others read the
// claim. Another body: idempotency_key_reused. Completed: a replay. Still
// pending: they wait for it, polling every pollEvery for up to pollFor, since
// the first request normally finishes within milliseconds and a replay is the
// answer the client wants; after that they answer request_in_flight (409),
// so the client retries later instead of holding a connection open, and they
// never start a second payment. A pending claim untouched for staleAfter (its
// request died or failed half-way) is taken over by the next request with
// that key and body, which resumes it.
func (c *Cashier) Pay(ctx context.Context, key string, req PaymentRequest) (Payment, bool, error) {
	if err := validateIdempotencyKey(key); err != nil {
		return Payment{}, false, err
	}
	if err := req.validate(); err != nil {
		return Payment{}, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	keyHash, fp := hashKey(key), req.fingerprint()
	giveUp := time.NewTimer(c.pollFor)
	defer giveUp.Stop()
	for range maxClaims {
		now := c.now()
		rec := KeyRecord{
			Fingerprint: fp,
			Status:      keyPending,
			Payment:     Payment{ID: c.newID(), OrderID: req.OrderID, AmountCents: *req.AmountCents, Status: StatusCompleted, CreatedAt: now},
			TouchedAt:   now,
		}
		err := c.store.ClaimKey(ctx, keyHash, rec, c.keyTTL)
		if err == nil {
			c.step(StepKeyClaimed)
			p, err := c.settle(ctx, keyHash, rec.Payment, false)
			return p, false, err
		}
		if !errors.Is(err, ErrConflict) {
			return Payment{}, false, err
		}
		p, replayed, err := c.follow(ctx, keyHash, fp, giveUp.C)
		if !errors.Is(err, errKeyReleased) {
			return p, replayed, err
		}
	}
	return Payment{}, false, inFlight()
}

// errKeyReleased tells Pay that the claim it lost was removed: the request
// holding it was refused, and this one may claim the key itself.
var errKeyReleased = errors.New("idempotency key released")

func inFlight() error {
	return api.Errorf(api.CodeRequestInFlight, "a request with this Idempotency-Key is still being processed; retry later")
}

// follow answers a request whose key another request has claimed: from the
// claim once it is completed, by resuming it once it is stale.
func (c *Cashier) follow(ctx context.Context, keyHash, fp string, giveUp <-chan time.Time) (Payment, bool, error) {
	for {
		rec, etag, err := c.store.Key(ctx, keyHash)
		switch {
		case errors.Is(err, ErrNotFound):
			return Payment{}, false, errKeyReleased
		case err != nil:
			return Payment{}, false, err
		case rec.Fingerprint != fp:
			return Payment{}, false, api.Errorf(api.CodeIdempotencyKeyReused, "this Idempotency-Key was already used for another payment request")
		case rec.Status == keyCompleted:
			p, err := c.store.Payment(ctx, rec.Payment.ID)
			if err != nil {
				return Payment{}, false, fmt.Errorf("replay payment %s: %w", rec.Payment.ID, err)
			}
			return p, true, nil
		case c.now().Sub(rec.TouchedAt) >= c.staleAfter:
			p, err := c.takeOver(ctx, keyHash, rec, etag)
			if errors.Is(err, ErrConflict) {
				continue // another request or the reconciler took it
			}
			return p, false, err
		}
		select {
		case <-ctx.Done():
			return Payment{}, false, ctx.Err()
		case <-giveUp:
			return Payment{}, false, inFlight()
		case <-time.After(c.pollEvery):
		}
	}
}

// takeOver makes this attempt the one that resumes a stale pending key, by
// touching its record with its ETag (ErrConflict: another one did), and
// resumes it.
func (c *Cashier) takeOver(ctx context.Context, keyHash string, rec KeyRecord, etag string) (Payment, error) {
	rec.TouchedAt = c.now()
	if err := c.store.UpdateKey(ctx, keyHash, rec, etag); err != nil {
		return Payment{}, err
	}
	return c.settle(ctx, keyHash, rec.Payment, true)
}

// settle carries the payment of a claimed key through: check the order, list
// the key as pending, claim the order, store the payment with its event,
// complete the key. A refusal gives the key back, so nothing is left of a
// payment that could not be. Any other failure leaves the key pending, naming
// its payment, for a later request or the reconciler to resume: every step
// below can be done twice with the same outcome.
func (c *Cashier) settle(ctx context.Context, keyHash string, p Payment, resumed bool) (Payment, error) {
	ours := false
	if resumed {
		// An order claimed by this payment was checked before it was
		// claimed; it may even be paid by now, by this very payment.
		holder, err := c.store.OrderPayment(ctx, p.OrderID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Payment{}, err
		}
		ours = err == nil && holder == p.ID
	}
	if !ours {
		if err := c.checkOrder(ctx, p); err != nil {
			return Payment{}, c.release(ctx, keyHash, p.ID, err)
		}
		// Listed before the order is claimed: an order is never claimed by
		// a payment the reconciler cannot find.
		if err := c.store.AddPending(ctx, keyHash, c.now()); err != nil {
			return Payment{}, err
		}
		if err := c.claimOrder(ctx, keyHash, p); err != nil {
			return Payment{}, err
		}
	}
	c.step(StepOrderClaimed)
	if err := c.storePayment(ctx, p); err != nil {
		return Payment{}, err
	}
	c.step(StepPaymentStored)
	if err := c.complete(ctx, keyHash, p.ID); err != nil {
		return Payment{}, err
	}
	if err := c.store.RemovePending(ctx, keyHash); err != nil {
		return Payment{}, err
	}
	return p, nil
}

// storePayment stores p with its payment_completed event, once: a payment
// found stored was published by the transaction that stored it. The commit is
// not cut short by the attempt's deadline (a transaction cancelled half-way
// leaves Dapr's outbox a staged event to give up on); it and the read-back of
// a lost answer get attemptTimeout/2 each.
func (c *Cashier) storePayment(ctx context.Context, p Payment) error {
	_, err := c.store.Payment(ctx, p.ID)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, ErrNotFound):
		return err
	}
	commit, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.attemptTimeout/2)
	defer cancel()
	err = c.store.StorePayment(commit, p, completedEvent(p))
	if err == nil {
		return nil
	}
	check, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.attemptTimeout/2)
	defer cancel()
	stored, getErr := c.store.Payment(check, p.ID)
	switch {
	case getErr == nil && stored.sameAs(p):
		return nil // committed; only the answer was lost
	case getErr == nil:
		return fmt.Errorf("payment %s is stored with other contents: %+v", p.ID, stored)
	case errors.Is(getErr, ErrNotFound):
		return fmt.Errorf("store payment %s: %w", p.ID, err)
	}
	return errors.Join(fmt.Errorf("store payment %s: %w", p.ID, err), getErr)
}

// checkOrder refuses a payment whose order does not exist, is paid already
// or costs another amount.
func (c *Cashier) checkOrder(ctx context.Context, p Payment) error {
	o, err := c.orders.Order(ctx, p.OrderID)
	var refusal *api.Error
	switch {
	case errors.Is(err, ErrUnknownOrder):
		return api.Errorf(api.CodeUnknownOrder, "order %s does not exist", p.OrderID)
	case errors.As(err, &refusal):
		return refusal
	case err != nil:
		return fmt.Errorf("check order %s: %w", p.OrderID, err)
	case o.Status == orderPaid:
		return api.Errorf(api.CodeOrderAlreadyPaid, "order %s is already paid", p.OrderID)
	case o.TotalCents != p.AmountCents:
		return api.Errorf(api.CodeAmountMismatch, "order %s costs %d cents, not %d", p.OrderID, o.TotalCents, p.AmountCents)
	}
	return nil
}

// claimOrder makes p the order's one payment. Two requests with different
// keys for one order both pass checkOrder while the order is unpaid; the
// insert-only claim lets one of them through.
func (c *Cashier) claimOrder(ctx context.Context, keyHash string, p Payment) error {
	err := c.store.ClaimOrder(ctx, p.OrderID, p.ID)
	if !errors.Is(err, ErrConflict) {
		return err
	}
	holder, getErr := c.store.OrderPayment(ctx, p.OrderID)
	switch {
	case getErr != nil:
		return errors.Join(err, getErr)
	case holder == p.ID:
		return nil
	}
	refusal := api.Errorf(api.CodeOrderAlreadyPaid, "order %s is already paid or being paid", p.OrderID)
	err = c.release(ctx, keyHash, p.ID, refusal)
	if rmErr := c.store.RemovePending(context.WithoutCancel(ctx), keyHash); rmErr != nil {
		return errors.Join(err, rmErr)
	}
	return err
}

// release gives back the key claimed for payment paymentID when the payment
// cannot be made (a refusal, or the order could not be checked), so that
// nothing is stored and the client may use the key again, with a corrected
// request if it was refused. cause is what it answers then. If the key cannot
// be given back, the client is told the service failed rather than refused:
// it must retry the same request.
func (c *Cashier) release(ctx context.Context, keyHash, paymentID string, cause error) error {
	ctx = context.WithoutCancel(ctx)
	rec, etag, err := c.store.Key(ctx, keyHash)
	switch {
	case errors.Is(err, ErrNotFound):
		return cause
	case err == nil && (rec.Payment.ID != paymentID || rec.Status != keyPending):
		return cause
	case err == nil:
		err = c.store.DeleteKey(ctx, keyHash, etag)
		if errors.Is(err, ErrConflict) {
			// Another request took the key over meanwhile; it meets the
			// same answer and gives the key back itself.
			return cause
		}
	}
	if err != nil {
		return fmt.Errorf("%v, and giving the idempotency key back failed: %w", cause, err)
	}
	return cause
}

// complete marks the key of payment paymentID completed. Completing a
// completed key does nothing.
func (c *Cashier) complete(ctx context.Context, keyHash, paymentID string) error {
	return c.store.CompleteKey(ctx, keyHash, paymentID, c.now())
}

// Payment returns one payment.
func (c *Cashier) Payment(ctx context.Context, id string) (Payment, error) {
	if !api.ValidID(id) {
		return Payment{}, api.Errorf(api.CodeNotFound, "payment %q not found", id)
	}
	p, err := c.store.Payment(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Payment{}, api.Errorf(api.CodeNotFound, "payment %q not found", id)
	}
	return p, err
}
