package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// fakeStore is an in-memory PaymentStore with the semantics of the Dapr
// state store the app uses with first-write concurrency: every write bumps a
// key's version, inserts fail with ErrConflict when the key exists, updates
// and conditional deletes fail with ErrConflict when the version moved. It can
// be told to fail the next calls of one method, before or after the write
// (a write whose answer was lost), and reports calls to hooks so tests can
// orchestrate concurrent requests.
type fakeStore struct {
	mu       sync.Mutex
	version  int
	keys     map[string]versioned[KeyRecord]
	ttls     map[string]time.Duration
	orders   map[string]string // order id -> payment id
	payments map[string]Payment
	faults   map[string]*fault
	calls    map[string]int
	pending  map[string]time.Time
	// events receives the event of every stored payment, in the same
	// write, as Dapr's outbox publishes it.
	events *fakeEvents

	// hooks, called after the call with the store unlocked.
	onClaimKey func()
	onKey      func()
}

type versioned[T any] struct {
	value T
	etag  string
}

type fault struct {
	n     int
	err   error
	after bool // the write happens, then the error is returned
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		keys:     map[string]versioned[KeyRecord]{},
		ttls:     map[string]time.Duration{},
		orders:   map[string]string{},
		payments: map[string]Payment{},
		faults:   map[string]*fault{},
		calls:    map[string]int{},
		pending:  map[string]time.Time{},
		events:   &fakeEvents{},
	}
}

// failNext makes the next n calls of method return err without writing.
func (s *fakeStore) failNext(method string, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = &fault{n: n, err: err}
}

// loseNextAnswer makes the next call of method write, then fail with err, as
// a write whose answer timed out does.
func (s *fakeStore) loseNextAnswer(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = &fault{n: 1, err: err, after: true}
}

// enter counts a call of method and returns the injected fault, if any. The
// caller holds s.mu.
func (s *fakeStore) enter(method string) *fault {
	s.calls[method]++
	f := s.faults[method]
	if f == nil || f.n == 0 {
		return nil
	}
	f.n--
	return f
}

// write runs a write of method under its injected fault.
func (s *fakeStore) write(method string, do func() error) error {
	f := s.enter(method)
	if f != nil && !f.after {
		return fmt.Errorf("fake %s: %w", method, f.err)
	}
	if err := do(); err != nil {
		return err
	}
	if f != nil {
		return fmt.Errorf("fake %s: answer lost: %w", method, f.err)
	}
	return nil
}

// read runs a read of method under its injected fault.
func (s *fakeStore) read(method string) error {
	if f := s.enter(method); f != nil {
		return fmt.Errorf("fake %s: %w", method, f.err)
	}
	return nil
}

func (s *fakeStore) nextETag() string {
	s.version++
	return strconv.Itoa(s.version)
}

func (s *fakeStore) ClaimKey(_ context.Context, keyHash string, rec KeyRecord, ttl time.Duration) error {
	defer s.hook(s.onClaimKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write("ClaimKey", func() error {
		if _, ok := s.keys[keyHash]; ok {
			return ErrConflict
		}
		s.keys[keyHash] = versioned[KeyRecord]{rec, s.nextETag()}
		s.ttls[keyHash] = ttl
		return nil
	})
}

func (s *fakeStore) Key(_ context.Context, keyHash string) (KeyRecord, string, error) {
	defer s.hook(s.onKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.read("Key"); err != nil {
		return KeyRecord{}, "", err
	}
	v, ok := s.keys[keyHash]
	if !ok {
		return KeyRecord{}, "", ErrNotFound
	}
	return v.value, v.etag, nil
}

func (s *fakeStore) UpdateKey(_ context.Context, keyHash string, rec KeyRecord, etag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write("UpdateKey", func() error {
		cur, ok := s.keys[keyHash]
		if !ok || cur.etag != etag {
			return ErrConflict
		}
		s.keys[keyHash] = versioned[KeyRecord]{rec, s.nextETag()}
		return nil
	})
}

func (s *fakeStore) CompleteKey(_ context.Context, keyHash, paymentID string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write("CompleteKey", func() error {
		cur, ok := s.keys[keyHash]
		switch {
		case !ok:
			return ErrNotFound
		case cur.value.Payment.ID != paymentID:
			return fmt.Errorf("the key names payment %s", cur.value.Payment.ID)
		case cur.value.Status == keyCompleted:
			return nil
		}
		rec := cur.value
		rec.Status, rec.TouchedAt = keyCompleted, at
		s.keys[keyHash] = versioned[KeyRecord]{rec, s.nextETag()}
		return nil
	})
}

func (s *fakeStore) DeleteKey(_ context.Context, keyHash, etag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write("DeleteKey", func() error {
		cur, ok := s.keys[keyHash]
		if etag != "" && (!ok || cur.etag != etag) {
			return ErrConflict
		}
		delete(s.keys, keyHash)
		delete(s.ttls, keyHash)
		return nil
	})
}

func (s *fakeStore) ClaimOrder(_ context.Context, orderID, paymentID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write("ClaimOrder", func() error {
		if _, ok := s.orders[orderID]; ok {
			return ErrConflict
		}
		s.orders[orderID] = paymentID
		return nil
	})
}

func (s *fakeStore) OrderPayment(_ context.Context, orderID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.read("OrderPayment"); err != nil {
		return "", err
	}
	id, ok := s.orders[orderID]
	if !ok {
		return "", ErrNotFound
	}
	return id, nil
}

// StorePayment stores p and publishes it (to events) in one step: if the
// events fail, nothing is stored, as a failed outbox transaction.
func (s *fakeStore) StorePayment(ctx context.Context, p Payment, ev Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write("StorePayment", func() error {
		if ev != completedEvent(p) {
			return fmt.Errorf("event %+v is not payment %+v's", ev, p)
		}
		if err := s.events.PaymentCompleted(ctx, p); err != nil {
			return err
		}
		s.payments[p.ID] = p
		return nil
	})
}

func (s *fakeStore) AddPending(_ context.Context, keyHash string, since time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write("AddPending", func() error {
		if _, ok := s.pending[keyHash]; !ok {
			s.pending[keyHash] = since
		}
		return nil
	})
}

func (s *fakeStore) RemovePending(_ context.Context, keyHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write("RemovePending", func() error {
		delete(s.pending, keyHash)
		return nil
	})
}

func (s *fakeStore) Pending(context.Context) ([]PendingKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.read("Pending"); err != nil {
		return nil, err
	}
	out := make([]PendingKey, 0, len(s.pending))
	for k, since := range s.pending {
		out = append(out, PendingKey{KeyHash: k, Since: since})
	}
	return out, nil
}

// pendingKeys returns the hashes of the keys listed pending.
func (s *fakeStore) pendingKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.pending))
	for k := range s.pending {
		out = append(out, k)
	}
	return out
}

func (s *fakeStore) Payment(_ context.Context, id string) (Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.read("Payment"); err != nil {
		return Payment{}, err
	}
	p, ok := s.payments[id]
	if !ok {
		return Payment{}, ErrNotFound
	}
	return p, nil
}

func (s *fakeStore) hook(f func()) {
	if f != nil {
		f()
	}
}

func (s *fakeStore) callCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// storedPayments returns every stored payment.
func (s *fakeStore) storedPayments() []Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Payment, 0, len(s.payments))
	for _, p := range s.payments {
		out = append(out, p)
	}
	return out
}

// keyRecord returns the record stored for a client's Idempotency-Key.
func (s *fakeStore) keyRecord(key string) (KeyRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.keys[hashKey(key)]
	return v.value, ok
}

// keyTTL returns the TTL a client's Idempotency-Key was claimed with.
func (s *fakeStore) keyTTL(key string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ttls[hashKey(key)]
}

// storedKeys returns the hashes of every stored Idempotency-Key.
func (s *fakeStore) storedKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.keys))
	for k := range s.keys {
		out = append(out, k)
	}
	return out
}

// orderHolder returns the payment that claimed an order, if any.
func (s *fakeStore) orderHolder(orderID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.orders[orderID]
	return id, ok
}
