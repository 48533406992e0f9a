package main

import (
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

func reserve(t *testing.T, c *Catalog, productID, orderID string, q int64) (Reservation, bool, error) {
	t.Helper()
	return c.Reserve(t.Context(), productID, ReservationRequest{OrderID: orderID, Quantity: &q})
}

func TestReserveValidation(t *testing.T) {
	tests := []struct {
		name string
		req  ReservationRequest
	}{
		{"no order", ReservationRequest{Quantity: ptr[int64](1)}},
		{"bad order id", ReservationRequest{OrderID: "o/1", Quantity: ptr[int64](1)}},
		{"no quantity", ReservationRequest{OrderID: "o-1"}},
		{"zero", ReservationRequest{OrderID: "o-1", Quantity: ptr[int64](0)}},
		{"too many", ReservationRequest{OrderID: "o-1", Quantity: ptr[int64](maxQuantity + 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := f.add(t, "Mug", 100, 5)
			before := f.snapshot()

			_, _, err := f.catalog.Reserve(t.Context(), p.ID, tt.req)

			apitest.RequireCode(t, err, api.CodeInvalidRequest)
			assert.Equal(t, before, f.snapshot())
		})
	}
}

// The steps run in order against one product, as orders' calls would.
func TestReserveReleaseConfirm(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 1250, 5)
	steps := []struct {
		name       string
		do         func() error
		wantCode   api.Code
		wantStock  int64
		wantHolds  []string
		wantReplay bool
	}{
		{name: "reserve", do: func() error { _, _, err := reserve(t, f.catalog, p.ID, "o-1", 2); return err }, wantStock: 3, wantHolds: []string{"o-1"}},
		{name: "reserve replayed", do: func() error {
			res, replayed, err := reserve(t, f.catalog, p.ID, "o-1", 2)
			assert.True(t, replayed)
			assert.Equal(t, int64(1250), res.PriceCents)
			return err
		}, wantStock: 3, wantHolds: []string{"o-1"}},
		{name: "same order, other quantity", do: func() error { _, _, err := reserve(t, f.catalog, p.ID, "o-1", 1); return err }, wantCode: api.CodeUnprocessable, wantStock: 3, wantHolds: []string{"o-1"}},
		{name: "too much", do: func() error { _, _, err := reserve(t, f.catalog, p.ID, "o-2", 4); return err }, wantCode: api.CodeInsufficientStock, wantStock: 3, wantHolds: []string{"o-1"}},
		{name: "unknown product", do: func() error { _, _, err := reserve(t, f.catalog, "p-9", "o-3", 1); return err }, wantCode: api.CodeNotFound, wantStock: 3, wantHolds: []string{"o-1"}},
		{name: "second order", do: func() error { _, _, err := reserve(t, f.catalog, p.ID, "o-2", 3); return err }, wantStock: 0, wantHolds: []string{"o-1", "o-2"}},
		{name: "release", do: func() error { return f.catalog.Release(t.Context(), p.ID, "o-1") }, wantStock: 2, wantHolds: []string{"o-2"}},
		{name: "release again", do: func() error { return f.catalog.Release(t.Context(), p.ID, "o-1") }, wantStock: 2, wantHolds: []string{"o-2"}},
		{name: "confirm", do: func() error { return f.catalog.Confirm(t.Context(), p.ID, "o-2") }, wantStock: 2},
		{name: "release after confirm", do: func() error { return f.catalog.Release(t.Context(), p.ID, "o-2") }, wantStock: 2},
		{name: "confirm unknown product", do: func() error { return f.catalog.Confirm(t.Context(), "p-9", "o-2") }, wantCode: api.CodeNotFound, wantStock: 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.do()

			if st.wantCode != "" {
				apitest.RequireCode(t, err, st.wantCode)
			} else {
				require.NoError(t, err)
			}
			rec := f.record(t, p.ID)
			assert.Equal(t, st.wantStock, rec.Stock)
			var holds []string
			for id := range rec.Holds {
				holds = append(holds, id)
			}
			assert.ElementsMatch(t, st.wantHolds, holds)
		})
	}
}

// A reservation whose answer was lost is retried by orders: the retry finds
// its hold and takes nothing more.
func TestReserveRetriedAfterALostAnswerTakesStockOnce(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 5)
	var lost atomic.Bool
	f.fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "SaveState" && !lost.Swap(true) {
			return sidecartest.Fault{Err: status.Error(codes.Unavailable, "connection reset"), AfterApply: true}
		}
		return sidecartest.Fault{}
	})

	_, _, err := reserve(t, f.catalog, p.ID, "o-1", 2)
	require.ErrorIs(t, err, api.ErrUnavailable)
	_, replayed, err := reserve(t, f.catalog, p.ID, "o-1", 2)

	require.NoError(t, err)
	assert.True(t, replayed)
	assert.Equal(t, int64(3), f.record(t, p.ID).Stock)
}

func TestReserveStoreDownChangesNothing(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 5)
	before := f.snapshot()
	f.fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "SaveState" {
			return sidecartest.Fault{Err: status.Error(codes.Unavailable, "down")}
		}
		return sidecartest.Fault{}
	})

	_, _, err := reserve(t, f.catalog, p.ID, "o-1", 1)

	assert.ErrorIs(t, err, api.ErrUnavailable)
	assert.Equal(t, before, f.snapshot())
}

// An uncontended reservation is one read of the product and one write: the
// read under the lock decides, with no read before it.
func TestReserveReadsTheProductOnce(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 5)
	reads, saves := f.fake.Calls("GetState"), f.fake.Calls("SaveState")

	_, replayed, err := reserve(t, f.catalog, p.ID, "o-1", 2)

	require.NoError(t, err)
	assert.False(t, replayed)
	assert.Equal(t, 1, f.fake.Calls("GetState")-reads, "reads")
	assert.Equal(t, 1, f.fake.Calls("SaveState")-saves, "writes")
	rec := f.record(t, p.ID)
	assert.Equal(t, int64(3), rec.Stock)
	assert.Equal(t, map[string]Hold{"o-1": {Quantity: 2, PriceCents: 100, At: testNow}}, rec.Holds)
}

// While another request of this replica holds a product, a refusal and a
// replay are answered from a lock-free read, without queueing behind it.
func TestReserveRefusesAndReplaysWithoutQueueing(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 5)
	_, _, err := reserve(t, f.catalog, p.ID, "o-1", 2)
	require.NoError(t, err)
	unlock := f.catalog.locks.Lock(p.ID) // another reservation at work
	defer unlock()

	answered := make(chan error, 2)
	go func() { _, _, err := reserve(t, f.catalog, p.ID, "o-2", 4); answered <- err }()
	go func() {
		_, replayed, err := reserve(t, f.catalog, p.ID, "o-1", 2)
		if err == nil && !replayed {
			err = errors.New("not a replay")
		}
		answered <- err
	}()

	var refusals, replays int
	for range 2 {
		select {
		case err := <-answered:
			var e *api.Error
			if errors.As(err, &e) && e.Code == api.CodeInsufficientStock {
				refusals++
			} else {
				require.NoError(t, err)
				replays++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a refusal or a replay waited for the product's lock")
		}
	}
	assert.Equal(t, 1, refusals)
	assert.Equal(t, 1, replays)
}

// Two replicas (two Catalogs, each with its own in-process lock, over one
// store) and 200 concurrent one-unit orders on a stock of 50: exactly 50
// hold stock, the rest are refused, nothing is oversold.
func TestReserveRacingAcrossTwoReplicas(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 50)
	replicas := []*Catalog{f.catalog, f.replica()}
	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			_, _, err := reserve(t, replicas[i%2], p.ID, "o-"+itoa(i), 1)
			var e *api.Error
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &e) && e.Code == api.CodeInsufficientStock:
				refused.Add(1)
			default:
				other.Add(1)
				t.Logf("unexpected: %v", err)
			}
		})
	}
	wg.Wait()

	rec := f.record(t, p.ID)
	assert.Equal(t, int64(50), ok.Load())
	assert.Equal(t, int64(150), refused.Load())
	assert.Zero(t, other.Load())
	assert.Zero(t, rec.Stock)
	assert.Len(t, rec.Holds, 50)
}

// Racing releases of one order (orders' retry and the repairer, on two
// replicas) give its stock back once.
func TestReleaseRacingGivesStockBackOnce(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 5)
	_, _, err := reserve(t, f.catalog, p.ID, "o-1", 2)
	require.NoError(t, err)
	replicas := []*Catalog{f.catalog, f.replica()}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { assert.NoError(t, replicas[i%2].Release(t.Context(), p.ID, "o-1")) })
	}
	wg.Wait()

	assert.Equal(t, int64(5), f.record(t, p.ID).Stock)
}

func TestReserveBoundsTheHolds(t *testing.T) {
	f := newFixture(t)
	p := f.add(t, "Mug", 100, 1)
	full := productRecord{Product: p, Holds: map[string]Hold{}}
	for i := range maxHolds {
		full.Holds["o-"+itoa(i)] = Hold{Quantity: 1, PriceCents: 100, At: testNow}
	}
	data, err := json.Marshal(full)
	require.NoError(t, err)
	f.fake.Put("statestore", "product/"+p.ID, data)

	_, _, err = reserve(t, f.catalog, p.ID, "o-last", 1)

	apitest.RequireCode(t, err, api.CodeConflict)
	assert.Equal(t, int64(1), f.record(t, p.ID).Stock)
}

func itoa(i int) string { return strconv.Itoa(i) }
