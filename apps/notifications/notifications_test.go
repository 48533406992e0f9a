package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/events"
)

// fakeInbox is an in-memory Inbox. Add and AddDeadLetter are idempotent by
// notification id and event id, as the Inbox contract asks; each method can
// be made to fail. Like stateInbox, List and DeadLetters answer an empty,
// non-nil list when there is nothing.
type fakeInbox struct {
	mu          sync.Mutex
	notes       []Notification // oldest first
	deadLetters []DeadLetter   // oldest first

	addErr         error // returned by Add instead of storing
	listErr        error // returned by List
	addDeadErr     error // returned by AddDeadLetter instead of storing
	deadLettersErr error // returned by DeadLetters

	adds int // calls of Add, failed ones included
}

func newFakeInbox() *fakeInbox { return &fakeInbox{} }

func (f *fakeInbox) Add(_ context.Context, n Notification) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds++
	if f.addErr != nil {
		return false, f.addErr
	}
	for _, have := range f.notes {
		if have.ID == n.ID {
			return false, nil
		}
	}
	f.notes = append(f.notes, n)
	return true, nil
}

// List pages by position among all notifications, as stateInbox pages by
// sequence number.
func (f *fakeInbox) List(_ context.Context, userID string, from int64, limit int) (Page[Notification], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return Page[Notification]{}, f.listErr
	}
	var mine []Notification
	for _, n := range f.notes {
		if n.UserID == userID {
			mine = append(mine, n)
		}
	}
	return fakePage(mine, from, limit), nil
}

func fakePage[T any](all []T, from int64, limit int) Page[T] {
	p := Page[T]{Items: []T{}}
	for i := from; i < int64(len(all)) && len(p.Items) < limit; i++ {
		p.Items = append(p.Items, all[i])
	}
	p.Next = from + int64(len(p.Items))
	p.More = p.Next < int64(len(all))
	return p
}

func (f *fakeInbox) AddDeadLetter(_ context.Context, d DeadLetter) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addDeadErr != nil {
		return false, f.addDeadErr
	}
	for _, have := range f.deadLetters {
		if have.EventID == d.EventID {
			return false, nil
		}
	}
	f.deadLetters = append(f.deadLetters, d)
	return true, nil
}

func (f *fakeInbox) DeadLetters(_ context.Context, from int64, limit int) (Page[DeadLetter], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deadLettersErr != nil {
		return Page[DeadLetter]{}, f.deadLettersErr
	}
	return fakePage(f.deadLetters, from, limit), nil
}

// stored returns a copy of every stored notification, oldest first.
func (f *fakeInbox) stored() []Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Notification(nil), f.notes...)
}

// storedDeadLetters returns a copy of every stored dead letter, oldest first.
func (f *fakeInbox) storedDeadLetters() []DeadLetter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]DeadLetter(nil), f.deadLetters...)
}

var testNow = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

// newTestNotifier returns a Notifier over a fresh fake inbox with a fixed
// clock.
func newTestNotifier(t *testing.T) (*Notifier, *fakeInbox) {
	t.Helper()
	inbox := newFakeInbox()
	return &Notifier{Inbox: inbox, Now: func() time.Time { return testNow }}, inbox
}

// orderData is the JSON of an order event's data.
func orderData(t *testing.T, typ, orderID, userID string) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"type": typ, "order_id": orderID, "user_id": userID,
		"product_id": "p-1", "quantity": 2, "total_cents": 2500, "status": "created",
	})
	require.NoError(t, err)
	return data
}

// asJSONString wraps a JSON document in a JSON string, as some publishers
// send data.
func asJSONString(t *testing.T, doc json.RawMessage) json.RawMessage {
	t.Helper()
	s, err := json.Marshal(string(doc))
	require.NoError(t, err)
	return s
}

// orderEvent is a CloudEvent on the orders topic.
func orderEvent(id string, data json.RawMessage) events.CloudEvent {
	return events.CloudEvent{ID: id, Type: "com.dapr.event.sent", Source: "orders", Topic: "orders", DataContentType: "application/json", Data: data}
}

func TestHandleOrderEvent(t *testing.T) {
	tests := []struct {
		name        string
		event       func(t *testing.T) events.CloudEvent
		wantChannel string
		wantType    string
	}{
		{
			name: "order_created becomes an email",
			event: func(t *testing.T) events.CloudEvent {
				return orderEvent("ev-1", orderData(t, "order_created", "o-1", "u-1"))
			},
			wantChannel: "email",
			wantType:    "order_created",
		},
		{
			name: "order_shipped becomes an sms",
			event: func(t *testing.T) events.CloudEvent {
				return orderEvent("ev-1", orderData(t, "order_shipped", "o-1", "u-1"))
			},
			wantChannel: "sms",
			wantType:    "order_shipped",
		},
		{
			name: "data as a JSON string holding the object",
			event: func(t *testing.T) events.CloudEvent {
				return orderEvent("ev-1", asJSONString(t, orderData(t, "order_created", "o-1", "u-1")))
			},
			wantChannel: "email",
			wantType:    "order_created",
		},
		{
			name: "data with surrounding whitespace",
			event: func(t *testing.T) events.CloudEvent {
				return orderEvent("ev-1", json.RawMessage(" \n"+string(orderData(t, "order_shipped", "o-1", "u-1"))+"\n"))
			},
			wantChannel: "sms",
			wantType:    "order_shipped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, inbox := newTestNotifier(t)

			outcome, err := n.HandleOrderEvent(t.Context(), tt.event(t))

			require.NoError(t, err)
			assert.Equal(t, events.Success, outcome)
			assert.Equal(t, []Notification{{
				ID:        notificationID("ev-1"),
				UserID:    "u-1",
				OrderID:   "o-1",
				Type:      tt.wantType,
				Channel:   tt.wantChannel,
				EventID:   "ev-1",
				CreatedAt: testNow,
			}}, inbox.stored())
		})
	}
}

func TestHandleOrderEventRedelivered(t *testing.T) {
	n, inbox := newTestNotifier(t)
	ev := orderEvent("ev-1", orderData(t, "order_created", "o-1", "u-1"))

	for i := range 3 {
		outcome, err := n.HandleOrderEvent(t.Context(), ev)
		require.NoError(t, err, "delivery %d", i+1)
		assert.Equal(t, events.Success, outcome, "delivery %d is acknowledged", i+1)
	}

	assert.Len(t, inbox.stored(), 1, "one event, one notification")
	assert.Equal(t, 3, inbox.adds)
}

func TestHandleOrderEventOneNotificationPerEvent(t *testing.T) {
	n, inbox := newTestNotifier(t)

	for _, ev := range []events.CloudEvent{
		orderEvent("ev-1", orderData(t, "order_created", "o-1", "u-1")),
		orderEvent("ev-2", orderData(t, "order_shipped", "o-1", "u-1")),
		orderEvent("ev-3", orderData(t, "order_created", "o-2", "u-2")),
	} {
		outcome, err := n.HandleOrderEvent(t.Context(), ev)
		require.NoError(t, err)
		require.Equal(t, events.Success, outcome)
	}

	stored := inbox.stored()
	require.Len(t, stored, 3)
	assert.Equal(t, []string{"email", "sms", "email"}, []string{stored[0].Channel, stored[1].Channel, stored[2].Channel})
	assert.Equal(t, []string{"u-1", "u-1", "u-2"}, []string{stored[0].UserID, stored[1].UserID, stored[2].UserID})
}

func TestHandleOrderEventDrops(t *testing.T) {
	created := `{"type":"order_created","order_id":"o-1","user_id":"u-1"}`
	tests := []struct {
		name        string
		id          string // the CloudEvent id
		data        string // the CloudEvent data, as JSON; "" for none
		wantMessage string // a substring of the error
	}{
		{name: "unknown event type", id: "ev-1", data: `{"type":"order_refunded","order_id":"o-1","user_id":"u-1"}`, wantMessage: `unknown event type "order_refunded"`},
		{name: "order_paid is not notified", id: "ev-1", data: `{"type":"order_paid","order_id":"o-1","user_id":"u-1"}`, wantMessage: `unknown event type "order_paid"`},
		{name: "no type", id: "ev-1", data: `{"order_id":"o-1","user_id":"u-1"}`, wantMessage: `unknown event type ""`},
		{name: "missing user_id", id: "ev-1", data: `{"type":"order_created","order_id":"o-1"}`, wantMessage: "no valid user_id and order_id"},
		{name: "invalid user_id", id: "ev-1", data: `{"type":"order_created","order_id":"o-1","user_id":"u/1"}`, wantMessage: "no valid user_id and order_id"},
		{name: "user_id of the wrong type", id: "ev-1", data: `{"type":"order_created","order_id":"o-1","user_id":7}`, wantMessage: "data is not an order event"},
		{name: "missing order_id", id: "ev-1", data: `{"type":"order_shipped","user_id":"u-1"}`, wantMessage: "no valid user_id and order_id"},
		{name: "invalid order_id", id: "ev-1", data: `{"type":"order_shipped","order_id":"` + strings.Repeat("o", 65) + `","user_id":"u-1"}`, wantMessage: "no valid user_id and order_id"},
		{name: "no CloudEvent id", id: "", data: created, wantMessage: "the CloudEvent has no id"},
		{name: "no data", id: "ev-1", data: "", wantMessage: "data is not an order event"},
		{name: "null data", id: "ev-1", data: `null`, wantMessage: "data is not an order event"},
		{name: "data is an array", id: "ev-1", data: `[` + created + `]`, wantMessage: "data is not an order event"},
		{name: "data is a string that holds no JSON", id: "ev-1", data: `"order_created for o-1"`, wantMessage: "data is not an order event"},
		{name: "data is a string holding a string holding the object", id: "ev-1", data: fmt.Sprintf("%q", fmt.Sprintf("%q", created)), wantMessage: "data is not an order event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, inbox := newTestNotifier(t)
			var data json.RawMessage
			if tt.data != "" {
				data = json.RawMessage(tt.data)
			}

			outcome, err := n.HandleOrderEvent(t.Context(), orderEvent(tt.id, data))

			assert.Equal(t, events.Drop, outcome)
			require.ErrorIs(t, err, errPoison)
			assert.Contains(t, err.Error(), tt.wantMessage)
			assert.Zero(t, inbox.adds, "a poison event reaches no inbox")
		})
	}
}

func TestHandleOrderEventInboxFailureRetries(t *testing.T) {
	n, inbox := newTestNotifier(t)
	down := fmt.Errorf("insert notification: %w: connection refused", api.ErrUnavailable)
	inbox.addErr = down
	ev := orderEvent("ev-1", orderData(t, "order_created", "o-1", "u-1"))

	outcome, err := n.HandleOrderEvent(t.Context(), ev)

	assert.Equal(t, events.Retry, outcome)
	assert.ErrorIs(t, err, down)
	assert.NotErrorIs(t, err, errPoison)
	assert.Empty(t, inbox.stored())

	t.Run("the redelivery succeeds once the inbox is back", func(t *testing.T) {
		inbox.mu.Lock()
		inbox.addErr = nil
		inbox.mu.Unlock()

		outcome, err := n.HandleOrderEvent(t.Context(), ev)

		require.NoError(t, err)
		assert.Equal(t, events.Success, outcome)
		assert.Len(t, inbox.stored(), 1)
	})
}

func TestHandleDeadLetter(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		wantID     string // "" for an id derived from the body
		wantTopic  string
		wantReason string // a substring
		wantEvent  string // the stored event, as JSON
	}{
		{
			name:       "unknown event type",
			raw:        `{"id":"ev-1","topic":"orders","data":{"type":"order_refunded","order_id":"o-1","user_id":"u-1"}}`,
			wantID:     "ev-1",
			wantTopic:  "orders",
			wantReason: `unknown event type "order_refunded"`,
			wantEvent:  `{"id":"ev-1","topic":"orders","data":{"type":"order_refunded","order_id":"o-1","user_id":"u-1"}}`,
		},
		{
			name:       "invalid user_id",
			raw:        `{"id":"ev-2","topic":"orders","data":{"type":"order_created","order_id":"o-1","user_id":"u 1"}}`,
			wantID:     "ev-2",
			wantTopic:  "orders",
			wantReason: "no valid user_id and order_id",
			wantEvent:  `{"id":"ev-2","topic":"orders","data":{"type":"order_created","order_id":"o-1","user_id":"u 1"}}`,
		},
		{
			name:       "a valid event that kept failing",
			raw:        `{"id":"ev-3","topic":"orders","data":{"type":"order_created","order_id":"o-1","user_id":"u-1"}}`,
			wantID:     "ev-3",
			wantTopic:  "orders",
			wantReason: "handling failed after every retry",
			wantEvent:  `{"id":"ev-3","topic":"orders","data":{"type":"order_created","order_id":"o-1","user_id":"u-1"}}`,
		},
		{
			name:       "a payment event orders dropped",
			raw:        `{"id":"ev-4","topic":"payments","data":{"type":"payment_completed","order_id":"o-404","payment_id":"p-1"}}`,
			wantID:     "ev-4",
			wantTopic:  "payments",
			wantReason: `dropped by its subscriber of topic "payments"`,
			wantEvent:  `{"id":"ev-4","topic":"payments","data":{"type":"payment_completed","order_id":"o-404","payment_id":"p-1"}}`,
		},
		{
			name:       "no CloudEvent id",
			raw:        `{"topic":"payments","data":{"type":"order_created","order_id":"o-1","user_id":"u-1"}}`,
			wantTopic:  "payments",
			wantReason: "the CloudEvent has no id",
			wantEvent:  `{"topic":"payments","data":{"type":"order_created","order_id":"o-1","user_id":"u-1"}}`,
		},
		{
			name:       "not JSON is kept as a string",
			raw:        "order_created o-1\x00",
			wantReason: "the CloudEvent has no id",
			wantEvent:  `"order_created o-1\u0000"`,
		},
		{
			name:       "empty body",
			raw:        "",
			wantReason: "the CloudEvent has no id",
			wantEvent:  `""`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, inbox := newTestNotifier(t)
			var ce events.CloudEvent
			_ = json.Unmarshal([]byte(tt.raw), &ce) // as the handler does: an undecodable event is kept as it is

			outcome, err := n.HandleDeadLetter(t.Context(), ce, []byte(tt.raw))

			require.NoError(t, err)
			assert.Equal(t, events.Success, outcome)
			stored := inbox.storedDeadLetters()
			require.Len(t, stored, 1)
			d := stored[0]
			if tt.wantID != "" {
				assert.Equal(t, tt.wantID, d.EventID)
			} else {
				assert.Regexp(t, `^unidentified-[0-9a-f]{16}$`, d.EventID)
			}
			assert.Equal(t, tt.wantTopic, d.Topic)
			assert.Contains(t, d.Reason, tt.wantReason)
			assert.JSONEq(t, tt.wantEvent, string(d.Event))
			assert.Equal(t, testNow, d.ReceivedAt)
		})
	}
}

func TestHandleDeadLetterIdempotent(t *testing.T) {
	tests := []struct {
		name   string
		first  string
		second string
		want   int // dead letters kept
	}{
		{
			name:   "same event id",
			first:  `{"id":"ev-1","topic":"orders","data":{"type":"nope"}}`,
			second: `{"id":"ev-1","topic":"orders","data":{"type":"nope"},"traceparent":"00-1"}`,
			want:   1,
		},
		{
			name:   "same body without an id",
			first:  `{"topic":"orders","data":{"type":"nope"}}`,
			second: `{"topic":"orders","data":{"type":"nope"}}`,
			want:   1,
		},
		{
			name:   "same undecodable body",
			first:  `not json`,
			second: `not json`,
			want:   1,
		},
		{
			name:   "other event ids",
			first:  `{"id":"ev-1","topic":"orders","data":{"type":"nope"}}`,
			second: `{"id":"ev-2","topic":"orders","data":{"type":"nope"}}`,
			want:   2,
		},
		{
			name:   "other bodies without an id",
			first:  `{"topic":"orders","data":{"type":"nope"}}`,
			second: `{"topic":"orders","data":{"type":"other"}}`,
			want:   2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, inbox := newTestNotifier(t)

			for _, raw := range []string{tt.first, tt.second} {
				var ce events.CloudEvent
				_ = json.Unmarshal([]byte(raw), &ce)
				outcome, err := n.HandleDeadLetter(t.Context(), ce, []byte(raw))
				require.NoError(t, err)
				require.Equal(t, events.Success, outcome)
			}

			assert.Len(t, inbox.storedDeadLetters(), tt.want)
		})
	}
}

func TestHandleDeadLetterInboxFailureRetries(t *testing.T) {
	n, inbox := newTestNotifier(t)
	down := fmt.Errorf("append dead-letters: %w", api.ErrUnavailable)
	inbox.addDeadErr = down
	raw := `{"id":"ev-1","topic":"orders","data":{"type":"nope"}}`
	var ce events.CloudEvent
	require.NoError(t, json.Unmarshal([]byte(raw), &ce))

	outcome, err := n.HandleDeadLetter(t.Context(), ce, []byte(raw))

	assert.Equal(t, events.Retry, outcome)
	assert.ErrorIs(t, err, down)
	assert.Empty(t, inbox.storedDeadLetters())
}

func TestNotifications(t *testing.T) {
	n, inbox := newTestNotifier(t)
	for _, ev := range []events.CloudEvent{
		orderEvent("ev-1", orderData(t, "order_created", "o-1", "u-1")),
		orderEvent("ev-2", orderData(t, "order_created", "o-2", "u-2")),
		orderEvent("ev-3", orderData(t, "order_shipped", "o-1", "u-1")),
	} {
		_, err := n.HandleOrderEvent(t.Context(), ev)
		require.NoError(t, err)
	}

	tests := []struct {
		name        string
		userID      string
		listErr     error
		wantCode    api.Code // "" for a list
		wantEvents  []string // event ids, in order
		wantErrorIs error
	}{
		{name: "a user's notifications, oldest first", userID: "u-1", wantEvents: []string{"ev-1", "ev-3"}},
		{name: "another user's", userID: "u-2", wantEvents: []string{"ev-2"}},
		{name: "a user with none", userID: "u-3", wantEvents: []string{}},
		{name: "missing user_id", userID: "", wantCode: api.CodeInvalidRequest},
		{name: "user_id with a slash", userID: "u/1", wantCode: api.CodeInvalidRequest},
		{name: "user_id too long", userID: strings.Repeat("u", 65), wantCode: api.CodeInvalidRequest},
		{name: "inbox down", userID: "u-1", listErr: api.ErrUnavailable, wantErrorIs: api.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inbox.mu.Lock()
			inbox.listErr = tt.listErr
			inbox.mu.Unlock()
			t.Cleanup(func() {
				inbox.mu.Lock()
				inbox.listErr = nil
				inbox.mu.Unlock()
			})

			page, err := n.Notifications(t.Context(), tt.userID, PageRequest{})
			list := page.Items

			switch {
			case tt.wantErrorIs != nil:
				assert.ErrorIs(t, err, tt.wantErrorIs)
			case tt.wantCode != "":
				var e *api.Error
				require.True(t, errors.As(err, &e), "want *api.Error, got %T: %v", err, err)
				assert.Equal(t, tt.wantCode, e.Code)
				assert.Contains(t, e.Message, "user_id")
			default:
				require.NoError(t, err)
				got := make([]string, len(list))
				for i, note := range list {
					got[i] = note.EventID
					assert.Equal(t, tt.userID, note.UserID)
				}
				assert.Equal(t, tt.wantEvents, got)
			}
		})
	}
}

func TestDecodeOrderEvent(t *testing.T) {
	want := OrderEvent{Type: "order_created", OrderID: "o-1", UserID: "u-1"}
	tests := []struct {
		name string
		data string
	}{
		{name: "object", data: `{"type":"order_created","order_id":"o-1","user_id":"u-1"}`},
		{name: "string holding the object", data: `"{\"type\":\"order_created\",\"order_id\":\"o-1\",\"user_id\":\"u-1\"}"`},
		{name: "fields notifications does not read", data: `{"type":"order_created","order_id":"o-1","user_id":"u-1","total_cents":2500,"extra":{"a":[1]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeOrderEvent(orderEvent("ev-1", json.RawMessage(tt.data)))

			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestNotificationID(t *testing.T) {
	tests := []struct {
		name    string
		eventID string
	}{
		{name: "uuid", eventID: "5b0f4a4e-5f7e-4c1a-9c1e-0f7f1b2c3d4e"},
		{name: "any characters", eventID: "ev/1 || ü"},
		{name: "long", eventID: strings.Repeat("e", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := notificationID(tt.eventID)

			assert.Equal(t, id, notificationID(tt.eventID), "one event, one id")
			assert.Regexp(t, `^ntf-[0-9a-f]{24}$`, id)
			assert.True(t, api.ValidID(id), "safe as a resource id and state key")
			assert.NotEqual(t, id, notificationID(tt.eventID+"x"))
		})
	}
}
