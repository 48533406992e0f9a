package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// fakeStore is an in-memory ProductStore with the ETag semantics of the Dapr
// state store the app uses: every write bumps a key's version, updates and
// conditional deletes fail with ErrConflict when the version moved, inserts
// fail with ErrConflict when the key exists. It can also be told to fail the
// next calls of one method, to drive retries and rollbacks.
type fakeStore struct {
	mu       sync.Mutex
	version  int
	products map[string]versioned[Product]
	index    *versioned[[]string]
	reserved map[string]versioned[Reservation]
	faults   map[string]*fault
	calls    map[string]int
}

type versioned[T any] struct {
	value T
	etag  string
}

type fault struct {
	n   int
	err error
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		products: map[string]versioned[Product]{},
		reserved: map[string]versioned[Reservation]{},
		faults:   map[string]*fault{},
		calls:    map[string]int{},
	}
}

// failNext makes the next n calls of method return err (wrapped as the real
// adapter wraps it) without touching the data.
func (s *fakeStore) failNext(method string, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = &fault{n: n, err: err}
}

// enter counts a call of method and returns the injected error, if any. The
// caller holds s.mu.
func (s *fakeStore) enter(method string) error {
	s.calls[method]++
	f := s.faults[method]
	if f == nil || f.n == 0 {
		return nil
	}
	f.n--
	return fmt.Errorf("fake %s: %w", method, f.err)
}

func (s *fakeStore) nextETag() string {
	s.version++
	return strconv.Itoa(s.version)
}

func (s *fakeStore) callCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *fakeStore) Product(_ context.Context, id string) (Product, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("Product"); err != nil {
		return Product{}, "", err
	}
	v, ok := s.products[id]
	if !ok {
		return Product{}, "", ErrNotFound
	}
	return v.value, v.etag, nil
}

func (s *fakeStore) InsertProduct(_ context.Context, p Product) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("InsertProduct"); err != nil {
		return err
	}
	if _, ok := s.products[p.ID]; ok {
		return ErrConflict
	}
	s.products[p.ID] = versioned[Product]{p, s.nextETag()}
	return nil
}

func (s *fakeStore) UpdateProduct(_ context.Context, p Product, etag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("UpdateProduct"); err != nil {
		return err
	}
	cur, ok := s.products[p.ID]
	if !ok || cur.etag != etag {
		return ErrConflict
	}
	s.products[p.ID] = versioned[Product]{p, s.nextETag()}
	return nil
}

func (s *fakeStore) DeleteProduct(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("DeleteProduct"); err != nil {
		return err
	}
	delete(s.products, id)
	return nil
}

func (s *fakeStore) Index(context.Context) ([]string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("Index"); err != nil {
		return nil, "", err
	}
	if s.index == nil {
		return nil, "", nil
	}
	return slices.Clone(s.index.value), s.index.etag, nil
}

func (s *fakeStore) SaveIndex(_ context.Context, ids []string, etag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("SaveIndex"); err != nil {
		return err
	}
	switch {
	case etag == "" && s.index != nil:
		return ErrConflict
	case etag != "" && (s.index == nil || s.index.etag != etag):
		return ErrConflict
	}
	s.index = &versioned[[]string]{slices.Clone(ids), s.nextETag()}
	return nil
}

func (s *fakeStore) Products(_ context.Context, ids []string) ([]Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("Products"); err != nil {
		return nil, err
	}
	out := make([]Product, 0, len(ids))
	for _, id := range ids {
		if v, ok := s.products[id]; ok {
			out = append(out, v.value)
		}
	}
	return out, nil
}

func (s *fakeStore) Reservation(_ context.Context, orderID string) (Reservation, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("Reservation"); err != nil {
		return Reservation{}, "", err
	}
	v, ok := s.reserved[orderID]
	if !ok {
		return Reservation{}, "", ErrNotFound
	}
	return v.value, v.etag, nil
}

func (s *fakeStore) InsertReservation(_ context.Context, r Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("InsertReservation"); err != nil {
		return err
	}
	if _, ok := s.reserved[r.OrderID]; ok {
		return ErrConflict
	}
	s.reserved[r.OrderID] = versioned[Reservation]{r, s.nextETag()}
	return nil
}

func (s *fakeStore) UpdateReservation(_ context.Context, r Reservation, etag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("UpdateReservation"); err != nil {
		return err
	}
	cur, ok := s.reserved[r.OrderID]
	if !ok || cur.etag != etag {
		return ErrConflict
	}
	s.reserved[r.OrderID] = versioned[Reservation]{r, s.nextETag()}
	return nil
}

func (s *fakeStore) DeleteReservation(_ context.Context, orderID, etag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("DeleteReservation"); err != nil {
		return err
	}
	cur, ok := s.reserved[orderID]
	if etag != "" && (!ok || cur.etag != etag) {
		return ErrConflict
	}
	delete(s.reserved, orderID)
	return nil
}

// stock returns a product's stored stock.
func (s *fakeStore) stock(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.products[id].value.Stock
}

// reservation returns the stored reservation of an order, if any.
func (s *fakeStore) reservation(orderID string) (Reservation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.reserved[orderID]
	return v.value, ok
}

// reservationCount returns how many reservations are stored.
func (s *fakeStore) reservationCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reserved)
}

// putReservation stores a reservation directly, as another replica would.
func (s *fakeStore) putReservation(r Reservation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserved[r.OrderID] = versioned[Reservation]{r, s.nextETag()}
}
