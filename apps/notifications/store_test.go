package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

// newStateInbox is the real adapter over a fake sidecar with Redis's
// semantics, as notifications runs on statestore.
func newStateInbox(t testing.TB, maxDeadLetters int64) (stateInbox, *sidecartest.Sidecar) {
	t.Helper()
	fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "statestore", Flavor: sidecartest.FlavorRedis}})
	client, err := sidecar.Connect(fake.Address, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(client.Close)
	return stateInbox{store: sidecar.NewStore(client, "statestore"), maxDeadLetters: maxDeadLetters}, fake
}

func note(user string, i int) Notification {
	id := fmt.Sprintf("ev-%s-%d", user, i)
	return Notification{ID: notificationID(id), UserID: user, OrderID: "o-1", Type: "order_created", Channel: "email", EventID: id, CreatedAt: testNow}
}

// readAll follows the cursors from the start and returns every event id.
func readAll(t *testing.T, s stateInbox, user string, limit int) (ids []string, pages int) {
	t.Helper()
	var from int64
	for {
		page, err := s.List(t.Context(), user, from, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Items), limit)
		for _, n := range page.Items {
			ids = append(ids, n.EventID)
		}
		pages++
		if !page.More {
			return ids, pages
		}
		require.Greater(t, page.Next, from, "the cursor moves on")
		from = page.Next
	}
}

func TestStateInboxPagesAUsersNotifications(t *testing.T) {
	s, fake := newStateInbox(t, 0)
	const n = 2*pageSize + 7
	var want []string
	for i := range n {
		added, err := s.Add(t.Context(), note("u-1", i))
		require.NoError(t, err)
		require.True(t, added)
		want = append(want, note("u-1", i).EventID)
	}
	_, err := s.Add(t.Context(), note("u-2", 0))
	require.NoError(t, err)

	got, pages := readAll(t, s, "u-1", 50)

	assert.Equal(t, want, got, "every notification once, oldest first")
	assert.Equal(t, 5, pages)
	other, _ := readAll(t, s, "u-2", 50)
	assert.Equal(t, []string{note("u-2", 0).EventID}, other)
	for _, k := range fake.Keys("statestore") {
		if !strings.Contains(k, "/page/") {
			continue
		}
		v, _ := fake.Value("statestore", k)
		assert.LessOrEqual(t, strings.Count(string(v), `"seq"`), pageSize, "page %s holds at most %d entries", k, pageSize)
	}
}

// A user's next notification costs two reads (the record and the log's head
// in one bulk read, then the log's page) and three writes (the head, the
// record, the page).
func TestStateInboxAddRoundTrips(t *testing.T) {
	s, fake := newStateInbox(t, 0)
	_, err := s.Add(t.Context(), note("u-1", 0))
	require.NoError(t, err)
	calls := func() map[string]int {
		return map[string]int{"GetState": fake.Calls("GetState"), "GetBulkState": fake.Calls("GetBulkState"), "SaveState": fake.Calls("SaveState")}
	}
	before := calls()

	added, err := s.Add(t.Context(), note("u-1", 1))

	require.NoError(t, err)
	require.True(t, added)
	after := calls()
	for method, want := range map[string]int{"GetBulkState": 1, "GetState": 1, "SaveState": 3} {
		assert.Equal(t, want, after[method]-before[method], method)
	}
	got, _ := readAll(t, s, "u-1", 10)
	assert.Equal(t, []string{note("u-1", 0).EventID, note("u-1", 1).EventID}, got)
}

func TestStateInboxAddIsIdempotent(t *testing.T) {
	s, _ := newStateInbox(t, 0)
	added, err := s.Add(t.Context(), note("u-1", 0))
	require.NoError(t, err)
	require.True(t, added)

	added, err = s.Add(t.Context(), note("u-1", 0))

	require.NoError(t, err)
	assert.False(t, added)
	got, _ := readAll(t, s, "u-1", 10)
	assert.Len(t, got, 1)
}

func TestStateInboxConcurrentDeliveriesOfOneEvent(t *testing.T) {
	s, _ := newStateInbox(t, 0)
	var wg sync.WaitGroup
	added := make([]bool, 8)
	for i := range added {
		wg.Go(func() {
			var err error
			added[i], err = s.Add(context.Background(), note("u-1", 0))
			assert.NoError(t, err)
		})
	}
	wg.Wait()

	n := 0
	for _, a := range added {
		if a {
			n++
		}
	}
	assert.Equal(t, 1, n, "one delivery adds it")
	got, _ := readAll(t, s, "u-1", 10)
	assert.Len(t, got, 1, "listed once")
}

// A delivery that stored its notification and died before listing it is
// completed by the redelivery.
func TestStateInboxRedeliveryListsAnUnlistedNotification(t *testing.T) {
	s, fake := newStateInbox(t, 0)
	fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "SaveState" && strings.Contains(strings.Join(c.Keys, ","), "/page/") {
			return sidecartest.Fault{Err: fmt.Errorf("redis down")}
		}
		return sidecartest.Fault{}
	})
	_, err := s.Add(t.Context(), note("u-1", 0))
	require.Error(t, err)
	fake.SetFault(nil)

	_, err = s.Add(t.Context(), note("u-1", 0))

	require.NoError(t, err)
	got, _ := readAll(t, s, "u-1", 10)
	assert.Equal(t, []string{note("u-1", 0).EventID}, got)
}

func deadLetter(i int) DeadLetter {
	return DeadLetter{EventID: fmt.Sprintf("dl-%d", i), Topic: "orders", Reason: "unknown event type", Event: []byte(`{"x":1}`), ReceivedAt: testNow}
}

func TestStateInboxDeadLettersAreOneRecordEachDeduplicatedAndCapped(t *testing.T) {
	const keep = 2 * pageSize
	s, fake := newStateInbox(t, keep)
	const n = 4*pageSize + 10
	for i := range n {
		added, err := s.AddDeadLetter(t.Context(), deadLetter(i))
		require.NoError(t, err)
		require.True(t, added)
	}
	added, err := s.AddDeadLetter(t.Context(), deadLetter(n-1))
	require.NoError(t, err)
	assert.False(t, added, "a redelivered dead letter is kept once")

	var records int
	for _, k := range fake.Keys("statestore") {
		if strings.HasPrefix(k, "deadletter/") {
			records++
		}
	}
	assert.GreaterOrEqual(t, records, keep, "at least the newest %d are kept", keep)
	assert.LessOrEqual(t, records, keep+pageSize, "no more than the cap and one page")

	var got []string
	var from int64
	for {
		page, err := s.DeadLetters(t.Context(), from, 100)
		require.NoError(t, err)
		for _, d := range page.Items {
			got = append(got, d.EventID)
		}
		if !page.More {
			break
		}
		from = page.Next
	}
	assert.Len(t, got, records, "every kept dead letter is listed")
	assert.Equal(t, deadLetter(n-1).EventID, got[len(got)-1], "newest last")
}

// The benchmark behind the README's claim: the first page of a user with
// 10,000 notifications costs what it costs for a user with 10 (the same
// state calls: the log's head, at most two pages and the entries read).
func BenchmarkFirstPage(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("notifications=%d", n), func(b *testing.B) {
			s, _ := newStateInbox(b, 0)
			user := fmt.Sprintf("u-%d", n)
			ctx := context.Background()
			for i := range n {
				if _, err := s.Add(ctx, note(user, i)); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				page, err := s.List(ctx, user, 0, defaultPageLimit)
				if err != nil || len(page.Items) != min(n, defaultPageLimit) {
					b.Fatalf("page of %d: %v", len(page.Items), err)
				}
			}
		})
	}
}
