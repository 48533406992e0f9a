package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

// newStatePayments is the real adapter over a fake sidecar with Redis's
// semantics and the outbox, as payments runs on paymentstore.
func newStatePayments(t *testing.T) (statePayments, *sidecartest.Sidecar) {
	t.Helper()
	fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "paymentstore", Flavor: sidecartest.FlavorRedis, Outbox: "payments"}},
		sidecartest.WithClock(func() time.Time { return testNow }))
	client, err := sidecar.Connect(fake.Address, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(client.Close)
	return statePayments{sidecar.NewStore(client, "paymentstore")}, fake
}

func testKeyRecord(paymentID string) KeyRecord {
	return KeyRecord{
		Fingerprint: "fp",
		Status:      keyPending,
		Payment:     Payment{ID: paymentID, OrderID: "o-1", AmountCents: 2500, Status: StatusCompleted, CreatedAt: testNow},
		TouchedAt:   testNow,
	}
}

func TestStatePaymentsClaimKeyIsInsertOnlyWithItsTTL(t *testing.T) {
	s, fake := newStatePayments(t)

	require.NoError(t, s.ClaimKey(t.Context(), "h1", testKeyRecord("pay-1"), 24*time.Hour))

	assert.Equal(t, testNow.Add(24*time.Hour), fake.ExpiresAt("paymentstore", "idempotency/h1"), "the key expires after its TTL")
	assert.ErrorIs(t, s.ClaimKey(t.Context(), "h1", testKeyRecord("pay-2"), 24*time.Hour), ErrConflict, "a second claim loses")
	rec, _, err := s.Key(t.Context(), "h1")
	require.NoError(t, err)
	assert.Equal(t, "pay-1", rec.Payment.ID)
}

func TestStatePaymentsClaimKeyWhoseAnswerWasLost(t *testing.T) {
	s, fake := newStatePayments(t)
	fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "SaveState" {
			return sidecartest.Fault{Err: fmt.Errorf("deadline exceeded"), AfterApply: true}
		}
		return sidecartest.Fault{}
	})

	err := s.ClaimKey(t.Context(), "h1", testKeyRecord("pay-1"), 24*time.Hour)

	assert.NoError(t, err, "the claim that landed is this request's own, not a conflict")
}

func TestStatePaymentsUpdateAndDeleteCheckTheETag(t *testing.T) {
	s, _ := newStatePayments(t)
	require.NoError(t, s.ClaimKey(t.Context(), "h1", testKeyRecord("pay-1"), time.Hour))
	_, etag, err := s.Key(t.Context(), "h1")
	require.NoError(t, err)
	touched := testKeyRecord("pay-1")
	touched.TouchedAt = testNow.Add(time.Minute)
	require.NoError(t, s.UpdateKey(t.Context(), "h1", touched, etag))

	assert.ErrorIs(t, s.UpdateKey(t.Context(), "h1", testKeyRecord("pay-1"), etag), ErrConflict, "a takeover with an old ETag loses")
	assert.ErrorIs(t, s.DeleteKey(t.Context(), "h1", etag), ErrConflict, "a release with an old ETag loses")
	rec, etag, err := s.Key(t.Context(), "h1")
	require.NoError(t, err)
	assert.True(t, rec.TouchedAt.Equal(touched.TouchedAt))
	require.NoError(t, s.DeleteKey(t.Context(), "h1", etag))
	_, _, err = s.Key(t.Context(), "h1")
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestStatePaymentsCompleteKey(t *testing.T) {
	s, _ := newStatePayments(t)
	require.NoError(t, s.ClaimKey(t.Context(), "h1", testKeyRecord("pay-1"), time.Hour))

	assert.Error(t, s.CompleteKey(t.Context(), "h1", "pay-2", testNow), "a key naming another payment is not completed")
	require.NoError(t, s.CompleteKey(t.Context(), "h1", "pay-1", testNow))
	require.NoError(t, s.CompleteKey(t.Context(), "h1", "pay-1", testNow), "completing twice is fine")
	assert.ErrorIs(t, s.CompleteKey(t.Context(), "missing", "pay-1", testNow), ErrNotFound)

	rec, _, err := s.Key(t.Context(), "h1")
	require.NoError(t, err)
	assert.Equal(t, keyCompleted, rec.Status)
}

func TestStatePaymentsClaimOrderIsInsertOnly(t *testing.T) {
	s, _ := newStatePayments(t)
	require.NoError(t, s.ClaimOrder(t.Context(), "o-1", "pay-1"))

	assert.ErrorIs(t, s.ClaimOrder(t.Context(), "o-1", "pay-2"), ErrConflict)
	holder, err := s.OrderPayment(t.Context(), "o-1")
	require.NoError(t, err)
	assert.Equal(t, "pay-1", holder)
	_, err = s.OrderPayment(t.Context(), "o-2")
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestStatePaymentsStorePaymentPublishesThroughTheOutbox(t *testing.T) {
	s, fake := newStatePayments(t)
	p := testKeyRecord("pay-1").Payment

	require.NoError(t, s.StorePayment(t.Context(), p, completedEvent(p)))

	stored, err := s.Payment(t.Context(), "pay-1")
	require.NoError(t, err)
	assert.True(t, stored.sameAs(p))
	events := fake.Published()
	require.Len(t, events, 1, "exactly one event per stored payment")
	assert.Equal(t, "payments", events[0].Topic)
	var ev Event
	require.NoError(t, json.Unmarshal(events[0].Data, &ev))
	assert.Equal(t, completedEvent(p).Type, ev.Type)
	assert.Equal(t, "pay-1", ev.PaymentID)
	assert.Equal(t, "o-1", ev.OrderID)
	assert.Equal(t, int64(2500), ev.AmountCents)
	assert.Equal(t, "application/json", events[0].Metadata["contentType"])
	_, found := fake.Value("paymentstore", "payment/pay-1")
	assert.True(t, found)
}

func TestStatePaymentsStorePaymentFailsWhole(t *testing.T) {
	s, fake := newStatePayments(t)
	p := testKeyRecord("pay-1").Payment
	fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "ExecuteStateTransaction" {
			return sidecartest.Fault{Err: fmt.Errorf("redis down")}
		}
		return sidecartest.Fault{}
	})

	err := s.StorePayment(t.Context(), p, completedEvent(p))

	require.ErrorIs(t, err, api.ErrUnavailable)
	assert.Empty(t, fake.Published(), "no event without its payment")
	_, err = s.Payment(t.Context(), "pay-1")
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestStatePaymentsStorePaymentChecksTheStoreFirst(t *testing.T) {
	s, fake := newStatePayments(t)
	p := testKeyRecord("pay-1").Payment
	fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "GetState" {
			return sidecartest.Fault{Err: fmt.Errorf("redis down")}
		}
		return sidecartest.Fault{}
	})

	err := s.StorePayment(t.Context(), p, completedEvent(p))

	require.ErrorIs(t, err, api.ErrUnavailable)
	assert.Zero(t, fake.Calls("ExecuteStateTransaction"), "an outage stages no outbox event")
}

func TestStatePaymentsPendingKeys(t *testing.T) {
	s, fake := newStatePayments(t)
	hashes := []string{hashKey("a"), hashKey("b"), hashKey("c"), hashKey("d")}
	for _, h := range hashes {
		require.NoError(t, s.AddPending(t.Context(), h, testNow))
		require.NoError(t, s.AddPending(t.Context(), h, testNow.Add(time.Hour)), "adding twice lists once")
	}

	pending, err := s.Pending(t.Context())
	require.NoError(t, err)
	var got []string
	for _, pk := range pending {
		got = append(got, pk.KeyHash)
		assert.True(t, pk.Since.Equal(testNow), "the first listing's time stays")
	}
	assert.ElementsMatch(t, hashes, got)

	require.NoError(t, s.RemovePending(t.Context(), hashes[0]))
	require.NoError(t, s.RemovePending(t.Context(), hashes[0]), "removing twice is fine")
	pending, err = s.Pending(t.Context())
	require.NoError(t, err)
	assert.Len(t, pending, 3)
	for _, k := range fake.Keys("paymentstore") {
		assert.Regexp(t, `^(pending/[0-9a-f])$`, k, "pending keys are one of %d shards", pendingShards)
	}
}
