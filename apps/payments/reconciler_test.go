package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// dieAt runs Pay on its own goroutine and stops it dead right after the named
// step, as a process killed there: nothing after the step runs.
func (f *fixture) dieAt(t *testing.T, step string, key string, req PaymentRequest) {
	t.Helper()
	f.cashier.step = func(name string) {
		if name == step {
			runtime.Goexit()
		}
	}
	t.Cleanup(func() { f.cashier.step = func(string) {} })
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = f.cashier.Pay(context.Background(), key, req)
	}()
	<-done
	f.cashier.step = func(string) {}
}

func TestReconcileFinishesAPaymentWhoseAttemptDied(t *testing.T) {
	tests := []struct {
		step          string
		wantPublished []string // before reconciling
	}{
		{step: StepOrderClaimed},
		{step: StepPaymentStored, wantPublished: []string{"pay-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			f := newFixture(t)
			f.dieAt(t, tt.step, "key-1", request("o-1", 2500))
			holder, claimed := f.store.orderHolder("o-1")
			require.True(t, claimed)
			require.Equal(t, "pay-1", holder)
			assert.Equal(t, tt.wantPublished, nilIfEmpty(f.events.publishedIDs()))

			n, err := f.cashier.Reconcile(t.Context())
			require.NoError(t, err)
			assert.Zero(t, n, "an attempt that may still run is left alone")

			f.clock.advance(f.cashier.staleAfter)
			n, err = f.cashier.Reconcile(t.Context())

			require.NoError(t, err)
			assert.Equal(t, 1, n)
			require.Len(t, f.store.storedPayments(), 1)
			assert.Equal(t, "pay-1", f.store.storedPayments()[0].ID)
			assert.Equal(t, []string{"pay-1"}, f.events.publishedIDs(), "published exactly once: a stored payment was published by its own transaction")
			rec, _ := f.store.keyRecord("key-1")
			assert.Equal(t, keyCompleted, rec.Status)
			assert.Empty(t, f.store.pendingKeys())

			p, replayed, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))
			require.NoError(t, err)
			assert.True(t, replayed, "the client's retry gets the payment the reconciler finished")
			assert.Equal(t, "pay-1", p.ID)
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestReconcileNothingToDoBeforeTheOrderIsClaimed(t *testing.T) {
	f := newFixture(t)
	f.dieAt(t, StepKeyClaimed, "key-1", request("o-1", 2500))
	f.clock.advance(f.cashier.staleAfter)

	n, err := f.cashier.Reconcile(t.Context())

	require.NoError(t, err)
	assert.Zero(t, n)
	_, claimed := f.store.orderHolder("o-1")
	assert.False(t, claimed, "no order is held: another key may pay it")
	p, _, err := f.cashier.Pay(t.Context(), "key-2", request("o-1", 2500))
	require.NoError(t, err)
	assert.Equal(t, "o-1", p.OrderID)
}

func TestReconcileGivesBackAKeyTheOrderNowRefuses(t *testing.T) {
	f := newFixture(t)
	f.store.failNext("ClaimOrder", 1, api.ErrUnavailable)
	_, _, err := f.cashier.Pay(t.Context(), "key-a", request("o-1", 2500))
	require.ErrorIs(t, err, api.ErrUnavailable)
	require.Len(t, f.store.pendingKeys(), 1)
	other, _, err := f.cashier.Pay(t.Context(), "key-b", request("o-1", 2500))
	require.NoError(t, err)
	f.clock.advance(f.cashier.staleAfter)

	n, err := f.cashier.Reconcile(t.Context())

	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []Payment{other}, f.store.storedPayments())
	_, found := f.store.keyRecord("key-a")
	assert.False(t, found, "the abandoned key is given back")
	assert.Empty(t, f.store.pendingKeys())
}

func TestReconcileDropsKeysThatAreGoneOrDone(t *testing.T) {
	f := newFixture(t)
	_, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))
	require.NoError(t, err)
	require.NoError(t, f.store.AddPending(t.Context(), hashKey("key-1"), testNow))   // completed
	require.NoError(t, f.store.AddPending(t.Context(), hashKey("no-such"), testNow)) // gone
	f.clock.advance(f.cashier.staleAfter)

	n, err := f.cashier.Reconcile(t.Context())

	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Empty(t, f.store.pendingKeys())
	assert.Len(t, f.events.publishedIDs(), 1)
}

func TestReconcileTwoReplicasResumeOnce(t *testing.T) {
	f := newFixture(t)
	f.dieAt(t, StepOrderClaimed, "key-1", request("o-1", 2500))
	f.clock.advance(f.cashier.staleAfter)
	second := *f.cashier // another replica over the same store

	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, c := range []*Cashier{f.cashier, &second} {
		wg.Go(func() {
			n, err := c.Reconcile(context.Background())
			assert.NoError(t, err)
			counts[i] = n
		})
	}
	wg.Wait()

	assert.Equal(t, 1, counts[0]+counts[1], "exactly one replica resumes the key")
	assert.Len(t, f.store.storedPayments(), 1)
	assert.Equal(t, []string{"pay-1"}, f.events.publishedIDs())
}

func TestReconcileReportsStoreFailures(t *testing.T) {
	f := newFixture(t)
	f.store.failNext("Pending", 1, fmt.Errorf("redis: %w", api.ErrUnavailable))

	_, err := f.cashier.Reconcile(t.Context())

	assert.ErrorIs(t, err, api.ErrUnavailable)
}

func TestPayStepsInOrder(t *testing.T) {
	f := newFixture(t)
	var steps []string
	f.cashier.step = func(name string) { steps = append(steps, name) }

	_, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

	require.NoError(t, err)
	assert.Equal(t, []string{StepKeyClaimed, StepOrderClaimed, StepPaymentStored}, steps)
	assert.Empty(t, f.store.pendingKeys(), "a finished payment is no longer pending")
}

func TestSetTimings(t *testing.T) {
	tests := []struct {
		attempt, stale time.Duration
		wantErr        bool
	}{
		{attempt: 10 * time.Second, stale: 30 * time.Second},
		{attempt: 10 * time.Second, stale: 20 * time.Second, wantErr: true},
		{attempt: 10 * time.Second, stale: 10 * time.Second, wantErr: true},
		{attempt: 0, stale: 10 * time.Second, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempt, "/", tt.stale), func(t *testing.T) {
			c := NewCashier(newFakeStore(), &fakeOrders{}, time.Now, func() string { return "x" })
			err := c.SetTimings(tt.attempt, tt.stale)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Greater(t, c.staleAfter, c.worstAttempt())
		})
	}
}

func TestDefaultTimings(t *testing.T) {
	c := NewCashier(newFakeStore(), &fakeOrders{}, time.Now, func() string { return "x" })
	assert.Greater(t, c.staleAfter, c.worstAttempt(), "a pending key turns stale only after any attempt on it ended")
	assert.Equal(t, 20*time.Second, c.worstAttempt(), "README (Payments) and the gateway's payments timeout state this figure")
}
