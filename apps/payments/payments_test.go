package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
)

// fakeOrders is an in-memory OrderDirectory. With a gate, every call first
// reports on arrived and then waits until the gate is closed.
type fakeOrders struct {
	mu     sync.Mutex
	orders map[string]Order
	err    error // returned instead of looking up
	calls  int

	arrived chan struct{}
	gate    chan struct{}
}

func (o *fakeOrders) Order(ctx context.Context, id string) (Order, error) {
	if o.gate != nil {
		o.arrived <- struct{}{}
		select {
		case <-o.gate:
		case <-ctx.Done():
			return Order{}, ctx.Err()
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.err != nil {
		return Order{}, o.err
	}
	ord, ok := o.orders[id]
	if !ok {
		return Order{}, ErrUnknownOrder
	}
	return ord, nil
}

// hold makes every call wait until the returned release is called; arrivals
// are reported on the returned channel.
func (o *fakeOrders) hold(t *testing.T, capacity int) (arrived <-chan struct{}, release func()) {
	t.Helper()
	o.arrived = make(chan struct{}, capacity)
	o.gate = make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(o.gate) }) }
	t.Cleanup(release)
	return o.arrived, release
}

// fakeEvents records the payments announced by the fake store's outbox, and
// can fail the next calls (and with them the transaction).
type fakeEvents struct {
	mu        sync.Mutex
	attempts  []Payment // every call
	published []Payment // the calls that succeeded
	failures  int
	err       error
}

func (e *fakeEvents) PaymentCompleted(_ context.Context, p Payment) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.attempts = append(e.attempts, p)
	if e.failures > 0 {
		e.failures--
		return e.err
	}
	e.published = append(e.published, p)
	return nil
}

func (e *fakeEvents) failNext(n int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures, e.err = n, err
}

func (e *fakeEvents) publishedIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, len(e.published))
	for i, p := range e.published {
		ids[i] = p.ID
	}
	return ids
}

func (e *fakeEvents) attemptIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, len(e.attempts))
	for i, p := range e.attempts {
		ids[i] = p.ID
	}
	return ids
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var testNow = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

// fixture is a Cashier over fakes: order o-1 (created, 2500 cents), o-2
// (created, 1000 cents) and o-paid (paid, 700 cents); payment ids pay-1,
// pay-2, ...
// payInBackground runs Pay on its own goroutine and hands back its error.
func (f *fixture) payInBackground(key string, req PaymentRequest) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, _, err := f.cashier.Pay(context.Background(), key, req)
		done <- err
	}()
	return done
}

// keyPolls signals (without blocking) each time the store is asked for a
// key record, as a request waiting for another with its key does.
func (f *fixture) keyPolls() <-chan struct{} {
	polled := make(chan struct{}, 1)
	f.store.onKey = func() {
		select {
		case polled <- struct{}{}:
		default:
		}
	}
	return polled
}

type fixture struct {
	cashier *Cashier
	store   *fakeStore
	orders  *fakeOrders
	events  *fakeEvents
	clock   *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		store: newFakeStore(),
		orders: &fakeOrders{orders: map[string]Order{
			"o-1":    {ID: "o-1", UserID: "u-1", ProductID: "p-1", Quantity: 2, TotalCents: 2500, Status: "created"},
			"o-2":    {ID: "o-2", UserID: "u-1", ProductID: "p-1", Quantity: 1, TotalCents: 1000, Status: "created"},
			"o-paid": {ID: "o-paid", UserID: "u-1", ProductID: "p-1", Quantity: 1, TotalCents: 700, Status: "paid"},
		}},
		clock: &clock{now: testNow},
	}
	f.events = f.store.events
	var n atomic.Int64
	f.cashier = NewCashier(f.store, f.orders, f.clock.Now, func() string { return fmt.Sprintf("pay-%d", n.Add(1)) })
	// Waiting for another request polls quickly and, unless a test says
	// otherwise, long enough never to give up before it finishes.
	f.cashier.pollEvery = time.Millisecond
	f.cashier.pollFor = time.Minute
	return f
}

// request builds a PaymentRequest.
func request(orderID string, amount int64) PaymentRequest {
	return PaymentRequest{OrderID: orderID, AmountCents: &amount}
}

func TestPayValidation(t *testing.T) {
	tests := []struct {
		name        string
		key         string
		req         PaymentRequest
		wantMessage string
	}{
		{"no key", "", request("o-1", 2500), "Idempotency-Key header is required"},
		{"key of 129 characters", strings.Repeat("k", 129), request("o-1", 2500), "longer than 128"},
		{"key with a space", "key 1", request("o-1", 2500), "printable ASCII"},
		{"key with a tab", "key\t1", request("o-1", 2500), "printable ASCII"},
		{"key with a control character", "key\x01", request("o-1", 2500), "printable ASCII"},
		{"key with DEL", "key\x7f", request("o-1", 2500), "printable ASCII"},
		{"key with non-ASCII", "clé-1", request("o-1", 2500), "printable ASCII"},
		{"key with a newline", "key\n", request("o-1", 2500), "printable ASCII"},
		{"missing order id", "key-1", PaymentRequest{AmountCents: ptr[int64](2500)}, "order_id is required"},
		{"invalid order id", "key-1", request("o||1", 2500), "order_id must be"},
		{"overlong order id", "key-1", request(strings.Repeat("o", 65), 2500), "order_id must be"},
		{"missing amount", "key-1", PaymentRequest{OrderID: "o-1"}, "amount_cents is required"},
		{"zero amount", "key-1", request("o-1", 0), "amount_cents must be"},
		{"negative amount", "key-1", request("o-1", -2500), "amount_cents must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)

			_, _, err := f.cashier.Pay(t.Context(), tt.key, tt.req)

			e := apitest.RequireCode(t, err, api.CodeInvalidRequest)
			assert.Equal(t, 400, e.Code.Status())
			assert.Contains(t, e.Message, tt.wantMessage)
			assert.Zero(t, f.store.callCount("ClaimKey"), "an invalid request claims nothing")
			assert.Zero(t, f.orders.calls)
		})
	}
}

func TestPayAcceptsKeys(t *testing.T) {
	var printable strings.Builder
	for c := byte(0x21); c <= 0x7E; c++ {
		printable.WriteByte(c)
	}
	tests := []struct {
		name string
		key  string
	}{
		{"one character", "k"},
		{"128 characters", strings.Repeat("k", 128)},
		{"a UUID", "8c0d5e0e-8b1f-4f55-9a53-2f5b4c3d2e1f"},
		{"every printable character but space", printable.String()[:94]},
		{"characters Dapr refuses in keys", "a||b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)

			p, replayed, err := f.cashier.Pay(t.Context(), tt.key, request("o-1", 2500))

			require.NoError(t, err)
			assert.False(t, replayed)
			rec, found := f.store.keyRecord(tt.key)
			require.True(t, found)
			assert.Equal(t, p.ID, rec.Payment.ID)
		})
	}
}

func TestPay(t *testing.T) {
	f := newFixture(t)

	p, replayed, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

	require.NoError(t, err)
	assert.False(t, replayed)
	want := Payment{ID: "pay-1", OrderID: "o-1", AmountCents: 2500, Status: StatusCompleted, CreatedAt: testNow}
	assert.Equal(t, want, p)
	assert.Equal(t, []Payment{want}, f.store.storedPayments())
	assert.Equal(t, []string{"pay-1"}, f.events.publishedIDs())
	holder, claimed := f.store.orderHolder("o-1")
	assert.True(t, claimed)
	assert.Equal(t, "pay-1", holder)

	rec, found := f.store.keyRecord("key-1")
	require.True(t, found)
	assert.Equal(t, keyCompleted, rec.Status)
	assert.Equal(t, want, rec.Payment)
	assert.Equal(t, 24*time.Hour, f.store.keyTTL("key-1"))
	assert.Equal(t, []string{hashKey("key-1")}, f.store.storedKeys(), "the key is stored hashed, never raw")
	assert.Regexp(t, `^[0-9a-f]{64}$`, hashKey("key-1"))
}

func TestPayReplay(t *testing.T) {
	f := newFixture(t)
	first, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))
	require.NoError(t, err)
	// A replay a while later, after the order was marked paid by the
	// first payment's event, still answers the first payment.
	f.clock.advance(time.Hour)
	f.orders.orders["o-1"] = Order{ID: "o-1", TotalCents: 2500, Status: "paid"}

	for i := range 3 {
		t.Run(fmt.Sprintf("replay %d", i+1), func(t *testing.T) {
			p, replayed, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

			require.NoError(t, err)
			assert.True(t, replayed)
			assert.Equal(t, first, p)
			assert.Len(t, f.store.storedPayments(), 1)
			assert.Equal(t, []string{first.ID}, f.events.publishedIDs(), "a replay announces nothing")
			assert.Equal(t, 1, f.orders.calls, "a replay checks no order")
		})
	}
}

func TestPayKeyReused(t *testing.T) {
	tests := []struct {
		name string
		req  PaymentRequest
	}{
		{"another amount", request("o-1", 2600)},
		{"another order", request("o-2", 2500)},
		{"another order with its right amount", request("o-2", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			first, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))
			require.NoError(t, err)

			_, replayed, err := f.cashier.Pay(t.Context(), "key-1", tt.req)

			e := apitest.RequireCode(t, err, api.CodeIdempotencyKeyReused)
			assert.Equal(t, 422, e.Code.Status())
			assert.False(t, replayed)
			assert.Equal(t, []Payment{first}, f.store.storedPayments(), "nothing else is stored")
			assert.Equal(t, []string{first.ID}, f.events.publishedIDs())
			_, claimed := f.store.orderHolder("o-2")
			assert.False(t, claimed)
			rec, _ := f.store.keyRecord("key-1")
			assert.Equal(t, first, rec.Payment, "the key still names the first payment")
		})
	}
}

func TestPayKeyReusedWhileFirstIsInFlight(t *testing.T) {
	f := newFixture(t)
	arrived, release := f.orders.hold(t, 1)
	firstDone := f.payInBackground("key-1", request("o-1", 2500))
	<-arrived

	_, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 9999))

	apitest.RequireCode(t, err, api.CodeIdempotencyKeyReused)
	release()
	require.NoError(t, <-firstDone)
	assert.Len(t, f.store.storedPayments(), 1)
}

func TestPayRefusals(t *testing.T) {
	tests := []struct {
		name       string
		req        PaymentRequest
		ordersErr  error
		wantCode   api.Code
		wantStatus int
		wantIs     error // for failures that are not refusals
	}{
		{name: "unknown order", req: request("o-404", 2500), wantCode: api.CodeUnknownOrder, wantStatus: 422},
		{name: "paid order", req: request("o-paid", 700), wantCode: api.CodeOrderAlreadyPaid, wantStatus: 422},
		{name: "amount too low", req: request("o-1", 2499), wantCode: api.CodeAmountMismatch, wantStatus: 422},
		{name: "amount too high", req: request("o-1", 2501), wantCode: api.CodeAmountMismatch, wantStatus: 422},
		{name: "another refusal of orders", req: request("o-1", 2500), ordersErr: api.Errorf(api.CodeInvalidRequest, "no"), wantCode: api.CodeInvalidRequest, wantStatus: 400},
		{name: "orders unavailable", req: request("o-1", 2500), ordersErr: fmt.Errorf("GET orders/internal/orders/o-1: %w", api.ErrUnavailable), wantIs: api.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.orders.err = tt.ordersErr

			_, _, err := f.cashier.Pay(t.Context(), "key-1", tt.req)

			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
				var e *api.Error
				assert.False(t, errors.As(err, &e), "an outage is not a refusal: %v", err)
			} else {
				e := apitest.RequireCode(t, err, tt.wantCode)
				assert.Equal(t, tt.wantStatus, e.Code.Status())
			}
			assert.Empty(t, f.store.storedKeys(), "no key is left behind")
			assert.Empty(t, f.store.storedPayments())
			_, claimed := f.store.orderHolder(tt.req.OrderID)
			assert.False(t, claimed)
			assert.Empty(t, f.events.attemptIDs())

			t.Run("the key can then pay a right request", func(t *testing.T) {
				f.orders.err = nil
				p, replayed, err := f.cashier.Pay(t.Context(), "key-1", request("o-2", 1000))

				require.NoError(t, err)
				assert.False(t, replayed)
				assert.Equal(t, "o-2", p.OrderID)
			})
		})
	}
}

func TestPayRefusalWhenTheKeyCannotBeGivenBack(t *testing.T) {
	f := newFixture(t)
	f.store.failNext("DeleteKey", 1, api.ErrUnavailable)

	_, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-404", 2500))

	require.ErrorIs(t, err, api.ErrUnavailable, "the client must retry, not take the refusal as final")
	var e *api.Error
	assert.False(t, errors.As(err, &e), "answered 503, not 422: %v", err)
	assert.Contains(t, err.Error(), "o-404 does not exist", "the log says what happened")
}

func TestPayConcurrentSameKey(t *testing.T) {
	const n = 100
	f := newFixture(t)
	// The first request to claim the key waits in the orders check until
	// every request has tried to claim it, so that 99 of them find it
	// pending and have to wait for it.
	arrived, release := f.orders.hold(t, 1)
	claims := make(chan struct{}, n)
	f.store.onClaimKey = func() { claims <- struct{}{} }

	type result struct {
		p        Payment
		replayed bool
		err      error
	}
	start := make(chan struct{})
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			p, replayed, err := f.cashier.Pay(context.Background(), "key-1", request("o-1", 2500))
			results[i] = result{p, replayed, err}
		})
	}
	close(start)
	for range n {
		<-claims
	}
	<-arrived
	release()
	wg.Wait()

	stored := f.store.storedPayments()
	require.Len(t, stored, 1, "exactly one payment is stored")
	created := 0
	for _, r := range results {
		require.NoError(t, r.err)
		assert.Equal(t, stored[0], r.p, "every answer carries the one payment")
		if !r.replayed {
			created++
		}
	}
	assert.Equal(t, 1, created, "one request creates, the others replay")
	assert.Equal(t, []string{stored[0].ID}, f.events.publishedIDs())
	assert.Equal(t, 1, f.orders.calls)
}

func TestPayConcurrentSameOrder(t *testing.T) {
	f := newFixture(t)
	// Both requests pass the orders check (the order is unpaid for both)
	// before either claims the order.
	arrived, release := f.orders.hold(t, 2)
	type result struct {
		p   Payment
		err error
	}
	results := make(chan result, 2)
	for _, key := range []string{"key-a", "key-b"} {
		go func() {
			p, _, err := f.cashier.Pay(context.Background(), key, request("o-1", 2500))
			results <- result{p, err}
		}()
	}
	<-arrived
	<-arrived
	release()

	var won []Payment
	var refused int
	for range 2 {
		r := <-results
		if r.err == nil {
			won = append(won, r.p)
			continue
		}
		apitest.RequireCode(t, r.err, api.CodeOrderAlreadyPaid)
		refused++
	}
	require.Len(t, won, 1, "one payment of the order succeeds")
	assert.Equal(t, 1, refused)
	assert.Equal(t, won, f.store.storedPayments())
	assert.Equal(t, []string{won[0].ID}, f.events.publishedIDs())
	assert.Len(t, f.store.storedKeys(), 1, "the refused request's key is given back")
}

func TestPayOrderPaidUnderAnotherKey(t *testing.T) {
	f := newFixture(t)
	first, _, err := f.cashier.Pay(t.Context(), "key-a", request("o-1", 2500))
	require.NoError(t, err)
	// The orders app has not yet seen payment_completed: the order still
	// looks unpaid, and the order claim is what refuses.

	_, _, err = f.cashier.Pay(t.Context(), "key-b", request("o-1", 2500))

	e := apitest.RequireCode(t, err, api.CodeOrderAlreadyPaid)
	assert.Contains(t, e.Message, "already paid or being paid")
	assert.Equal(t, []Payment{first}, f.store.storedPayments())
	_, found := f.store.keyRecord("key-b")
	assert.False(t, found)
}

func TestPayInFlight(t *testing.T) {
	f := newFixture(t)
	arrived, release := f.orders.hold(t, 1)
	firstDone := f.payInBackground("key-1", request("o-1", 2500))
	<-arrived
	f.cashier.pollFor = 5 * time.Millisecond

	_, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

	e := apitest.RequireCode(t, err, api.CodeRequestInFlight)
	assert.Equal(t, 409, e.Code.Status())
	assert.Equal(t, "a request with this Idempotency-Key is still being processed; retry later", e.Message)
	assert.Empty(t, f.store.storedPayments(), "the waiting request starts nothing")
	release()
	require.NoError(t, <-firstDone)
	assert.Len(t, f.store.storedPayments(), 1)
}

func TestPayWaitStopsWithTheRequest(t *testing.T) {
	f := newFixture(t)
	arrived, release := f.orders.hold(t, 1)
	firstDone := f.payInBackground("key-1", request("o-1", 2500))
	<-arrived
	polled := f.keyPolls()
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-polled; cancel() }()

	_, _, err := f.cashier.Pay(ctx, "key-1", request("o-1", 2500))

	assert.ErrorIs(t, err, context.Canceled)
	release()
	require.NoError(t, <-firstDone)
}

// A request waiting for another one with its key, which is then refused and
// gives the key back, claims the key itself and gets its own answer.
func TestPayWaiterClaimsAReleasedKey(t *testing.T) {
	f := newFixture(t)
	arrived, release := f.orders.hold(t, 2)
	firstDone := f.payInBackground("key-1", request("o-404", 2500))
	<-arrived
	polled := f.keyPolls()
	secondDone := f.payInBackground("key-1", request("o-404", 2500))
	<-polled // the second request found the key pending and waits
	release()

	apitest.RequireCode(t, <-firstDone, api.CodeUnknownOrder)
	apitest.RequireCode(t, <-secondDone, api.CodeUnknownOrder)
	assert.Equal(t, 3, f.store.callCount("ClaimKey"), "the first claim, the second one lost, and the second one won after the key was given back")
	assert.Equal(t, 2, f.orders.calls)
	assert.Empty(t, f.store.storedKeys())
}

func TestPayResumesAfterPublishFailure(t *testing.T) {
	f := newFixture(t)
	f.events.failNext(1, fmt.Errorf("publish: %w", api.ErrUnavailable))

	_, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

	require.ErrorIs(t, err, api.ErrUnavailable)
	rec, found := f.store.keyRecord("key-1")
	require.True(t, found, "the key stays claimed")
	assert.Equal(t, keyPending, rec.Status)
	assert.Equal(t, "pay-1", rec.Payment.ID)

	t.Run("a retry before the stale window waits, then is told to retry later", func(t *testing.T) {
		f.cashier.pollFor = 5 * time.Millisecond
		t.Cleanup(func() { f.cashier.pollFor = time.Minute })
		f.clock.advance(f.cashier.staleAfter - time.Second)

		_, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

		apitest.RequireCode(t, err, api.CodeRequestInFlight)
		assert.Equal(t, []string{"pay-1"}, f.events.attemptIDs(), "nothing is resumed yet")
	})

	t.Run("a retry after the stale window resumes the same payment", func(t *testing.T) {
		f.clock.advance(2 * time.Second)
		// By now the orders app may have seen nothing, or everything: the
		// resumed payment must not be refused because its own order is paid.
		f.orders.orders["o-1"] = Order{ID: "o-1", TotalCents: 2500, Status: "paid"}

		p, replayed, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

		require.NoError(t, err)
		assert.False(t, replayed, "this request is the one that completes the payment")
		assert.Equal(t, Payment{ID: "pay-1", OrderID: "o-1", AmountCents: 2500, Status: StatusCompleted, CreatedAt: testNow}, p)
		assert.Len(t, f.store.storedPayments(), 1, "exactly one payment is stored")
		assert.Equal(t, []string{"pay-1", "pay-1"}, f.events.attemptIDs(), "published again as the same event")
		assert.Equal(t, []string{"pay-1"}, f.events.publishedIDs())
		rec, _ := f.store.keyRecord("key-1")
		assert.Equal(t, keyCompleted, rec.Status)
	})

	t.Run("then it is replayed", func(t *testing.T) {
		p, replayed, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

		require.NoError(t, err)
		assert.True(t, replayed)
		assert.Equal(t, "pay-1", p.ID)
		assert.Len(t, f.events.attemptIDs(), 2)
	})
}

func TestPayResumesAfterStoreFailures(t *testing.T) {
	down := fmt.Errorf("redis: %w", api.ErrUnavailable)
	tests := []struct {
		name       string
		method     string
		answerLost bool // the write happened but its answer was lost
	}{
		{name: "claiming the order fails", method: "ClaimOrder"},
		{name: "claiming the order loses its answer", method: "ClaimOrder", answerLost: true},
		{name: "storing the payment fails", method: "StorePayment"},
		{name: "completing the key fails", method: "CompleteKey"},
		{name: "completing the key loses its answer", method: "CompleteKey", answerLost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.answerLost {
				f.store.loseNextAnswer(tt.method, down)
			} else {
				f.store.failNext(tt.method, 1, down)
			}

			_, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

			require.ErrorIs(t, err, api.ErrUnavailable)
			rec, found := f.store.keyRecord("key-1")
			require.True(t, found, "the key stays claimed, naming its payment")
			assert.Equal(t, "pay-1", rec.Payment.ID)

			f.clock.advance(f.cashier.staleAfter)
			p, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

			require.NoError(t, err)
			assert.Equal(t, "pay-1", p.ID)
			assert.Len(t, f.store.storedPayments(), 1, "exactly one payment is stored")
			holder, _ := f.store.orderHolder("o-1")
			assert.Equal(t, "pay-1", holder)
			for _, id := range f.events.publishedIDs() {
				assert.Equal(t, "pay-1", id, "every announcement is of the one payment")
			}
			rec, _ = f.store.keyRecord("key-1")
			assert.Equal(t, keyCompleted, rec.Status)
		})
	}
}

// A transaction whose answer was lost is resolved by reading the payment
// back: it committed, so it was published; nothing is stored or published
// again.
func TestPayStoredPaymentWithLostAnswerIsReadBack(t *testing.T) {
	f := newFixture(t)
	f.store.loseNextAnswer("StorePayment", fmt.Errorf("redis: %w", api.ErrUnavailable))

	p, replayed, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

	require.NoError(t, err)
	assert.False(t, replayed)
	assert.Equal(t, []Payment{p}, f.store.storedPayments())
	assert.Equal(t, []string{"pay-1"}, f.events.publishedIDs())
	rec, _ := f.store.keyRecord("key-1")
	assert.Equal(t, keyCompleted, rec.Status)
	assert.Empty(t, f.store.pendingKeys())
}

func TestPayResumeRefusedWhenAnotherPaymentHoldsTheOrder(t *testing.T) {
	f := newFixture(t)
	f.store.failNext("ClaimOrder", 1, api.ErrUnavailable)
	_, _, err := f.cashier.Pay(t.Context(), "key-a", request("o-1", 2500))
	require.ErrorIs(t, err, api.ErrUnavailable)
	other, _, err := f.cashier.Pay(t.Context(), "key-b", request("o-1", 2500))
	require.NoError(t, err)
	f.clock.advance(f.cashier.staleAfter)

	_, _, err = f.cashier.Pay(t.Context(), "key-a", request("o-1", 2500))

	apitest.RequireCode(t, err, api.CodeOrderAlreadyPaid)
	assert.Equal(t, []Payment{other}, f.store.storedPayments())
	_, found := f.store.keyRecord("key-a")
	assert.False(t, found, "the abandoned key is given back")
}

func TestPayment(t *testing.T) {
	f := newFixture(t)
	paid, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))
	require.NoError(t, err)

	tests := []struct {
		name     string
		id       string
		storeErr error
		wantCode api.Code
		wantIs   error
	}{
		{name: "known id", id: paid.ID},
		{name: "unknown id", id: "pay-404", wantCode: api.CodeNotFound},
		{name: "id that cannot exist", id: "../etc", wantCode: api.CodeNotFound},
		{name: "empty id", id: "", wantCode: api.CodeNotFound},
		{name: "store unavailable", id: paid.ID, storeErr: api.ErrUnavailable, wantIs: api.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.storeErr != nil {
				f.store.failNext("Payment", 1, tt.storeErr)
			}

			got, err := f.cashier.Payment(t.Context(), tt.id)

			switch {
			case tt.wantCode != "":
				apitest.RequireCode(t, err, tt.wantCode)
			case tt.wantIs != nil:
				assert.ErrorIs(t, err, tt.wantIs)
			default:
				require.NoError(t, err)
				assert.Equal(t, paid, got)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	base := request("o-1", 2500).fingerprint()
	assert.Equal(t, base, request("o-1", 2500).fingerprint())
	assert.NotEqual(t, base, request("o-1", 2501).fingerprint())
	assert.NotEqual(t, base, request("o-2", 2500).fingerprint())
	assert.NotEqual(t, request("o-12", 5).fingerprint(), request("o-1", 25).fingerprint(), "fields cannot run into each other")
}

func ptr[T any](v T) *T { return &v }
