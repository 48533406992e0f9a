package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeOrders answers which orders are stored; an order in fail cannot be
// told.
type fakeOrders struct {
	mu     sync.Mutex
	stored map[string]bool
	fail   map[string]bool
	asked  []string
}

func (o *fakeOrders) OrderStored(_ context.Context, id string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, id)
	if o.fail[id] {
		return false, errors.New("orders unavailable")
	}
	return o.stored[id], nil
}

func newRepairer(f *fixture, c *Catalog, orders OrderDirectory) *Repairer {
	return &Repairer{Catalog: c, Orders: orders, StaleAfter: time.Minute, Log: slog.New(slog.DiscardHandler)}
}

// Holds left by orders that died between two steps are settled once they
// are older than StaleAfter: confirmed when the order was stored, given back
// when it was not; a hold whose order cannot be told about, or that is
// still fresh, is left alone.
func TestRepairSettlesStaleHolds(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 10)
	q := f.add(t, "Plate", 100, 10)
	for _, o := range []string{"o-stored", "o-lost", "o-unknown"} {
		_, _, err := reserve(t, f.catalog, p.ID, o, 2)
		require.NoError(t, err)
	}
	_, _, err := reserve(t, f.catalog, q.ID, "o-lost-2", 1)
	require.NoError(t, err)
	f.clock.add(2 * time.Minute)
	_, _, err = reserve(t, f.catalog, p.ID, "o-fresh", 1) // in flight right now
	require.NoError(t, err)
	orders := &fakeOrders{stored: map[string]bool{"o-stored": true}, fail: map[string]bool{"o-unknown": true}}

	settled, err := newRepairer(f, f.catalog, orders).RepairOnce(t.Context())

	assert.Error(t, err, "o-unknown could not be told")
	assert.Equal(t, 3, settled)
	rp := f.record(t, p.ID)
	assert.Equal(t, int64(10-2-2-1), rp.Stock, "o-lost's 2 are back; o-stored's stay sold")
	assert.ElementsMatch(t, []string{"o-unknown", "o-fresh"}, keys(rp.Holds))
	rq := f.record(t, q.ID)
	assert.Equal(t, int64(10), rq.Stock)
	assert.Empty(t, rq.Holds)
	assert.NotContains(t, orders.asked, "o-fresh")
}

// Two replicas repairing at once settle each hold once: stock is conserved.
func TestRepairOnTwoReplicasConservesStock(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 100)
	stored := map[string]bool{}
	for i := range 40 {
		id := "o-" + itoa(i)
		_, _, err := reserve(t, f.catalog, p.ID, id, 1)
		require.NoError(t, err)
		stored[id] = i%2 == 0
	}
	f.clock.add(2 * time.Minute)
	orders := &fakeOrders{stored: stored}

	var wg sync.WaitGroup
	for _, c := range []*Catalog{f.catalog, f.replica()} {
		wg.Go(func() {
			_, err := newRepairer(f, c, orders).RepairOnce(t.Context())
			assert.NoError(t, err)
		})
	}
	wg.Wait()

	rec := f.record(t, p.ID)
	assert.Empty(t, rec.Holds)
	assert.Equal(t, int64(100-20), rec.Stock, "the 20 stored orders keep their stock, the 20 others gave it back once")
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
