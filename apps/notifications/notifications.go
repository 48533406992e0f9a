package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/events"
)

// Notification is a message sent to a user about one of their orders.
type Notification struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	OrderID   string    `json:"order_id"`
	Type      string    `json:"type"`    // the event that caused it
	Channel   string    `json:"channel"` // email or sms
	EventID   string    `json:"event_id"`
	CreatedAt time.Time `json:"created_at"`
}

// DeadLetter is an event that could never be handled, kept for an operator.
type DeadLetter struct {
	EventID    string          `json:"event_id"`
	Topic      string          `json:"topic"`
	Reason     string          `json:"reason"`
	Event      json.RawMessage `json:"event"`
	ReceivedAt time.Time       `json:"received_at"`
}

// channels says how each order event reaches the user, as in the tutorial:
// an email when the order is created, an SMS when it ships.
var channels = map[string]string{
	"order_created": "email",
	"order_shipped": "sms",
}

// Inbox stores notifications and dead letters. Add and AddDeadLetter are
// idempotent: adding an entry whose id is already there changes nothing and
// reports added=false. List and DeadLetters read one page, oldest first, of
// at most limit entries from position from (0 is the start) on; the page
// says where the next one starts.
type Inbox interface {
	Add(ctx context.Context, n Notification) (added bool, err error)
	List(ctx context.Context, userID string, from int64, limit int) (Page[Notification], error)
	AddDeadLetter(ctx context.Context, d DeadLetter) (added bool, err error)
	DeadLetters(ctx context.Context, from int64, limit int) (Page[DeadLetter], error)
}

// defaultPageLimit is the page size when a client asks for none; pageSize
// is the largest it may ask for.
const defaultPageLimit = 50

// PageRequest is a client's limit and cursor, as sent in the query string.
type PageRequest struct {
	Limit  string
	Cursor string
}

// parse checks a page request: limit 1 to pageSize (default
// defaultPageLimit), cursor as handed out by an earlier page (empty: the
// start).
func (r PageRequest) parse() (from int64, limit int, err error) {
	limit = defaultPageLimit
	if r.Limit != "" {
		n, err := strconv.Atoi(r.Limit)
		if err != nil || n < 1 || n > pageSize {
			return 0, 0, api.Errorf(api.CodeInvalidRequest, "limit must be a whole number from 1 to %d", pageSize)
		}
		limit = n
	}
	if r.Cursor != "" {
		n, err := strconv.ParseInt(r.Cursor, 10, 64)
		if err != nil || n < 0 || len(r.Cursor) > 19 {
			return 0, 0, api.Errorf(api.CodeInvalidRequest, "cursor is not one this service handed out")
		}
		from = n
	}
	return from, limit, nil
}

// Cursor is what a client sends to get the page after p ("" after the last).
func (p Page[T]) Cursor() string {
	if !p.More {
		return ""
	}
	return strconv.FormatInt(p.Next, 10)
}

// OrderEvent is the part of an order event notifications reads.
type OrderEvent struct {
	Type    string `json:"type"`
	OrderID string `json:"order_id"`
	UserID  string `json:"user_id"`
}

// ordersTopic is the topic of the order events notifications turns into
// notifications (dapr/resources/subscriptions.yaml).
const ordersTopic = "orders"

// errPoison marks an event that can never be handled.
var errPoison = errors.New("poison event")

// Notifier turns order events into notifications.
type Notifier struct {
	Inbox Inbox
	Now   func() time.Time
}

// HandleOrderEvent makes the notification an order event calls for. A
// redelivered event (same CloudEvent id) makes no second notification.
func (n *Notifier) HandleOrderEvent(ctx context.Context, ce events.CloudEvent) (events.Outcome, error) {
	ev, err := decodeOrderEvent(ce)
	if err != nil {
		return events.Drop, err
	}
	note := Notification{
		ID:        notificationID(ce.ID),
		UserID:    ev.UserID,
		OrderID:   ev.OrderID,
		Type:      ev.Type,
		Channel:   channels[ev.Type],
		EventID:   ce.ID,
		CreatedAt: n.Now(),
	}
	if _, err := n.Inbox.Add(ctx, note); err != nil {
		return events.Retry, err
	}
	return events.Success, nil
}

// HandleDeadLetter keeps an event that was dropped, with the reason it could
// not be handled.
func (n *Notifier) HandleDeadLetter(ctx context.Context, ce events.CloudEvent, raw []byte) (events.Outcome, error) {
	reason := deadLetterReason(ce)
	id := ce.ID
	if id == "" {
		sum := sha256.Sum256(raw)
		id = "unidentified-" + hex.EncodeToString(sum[:8])
	}
	d := DeadLetter{EventID: id, Topic: ce.Topic, Reason: reason, Event: rawJSON(raw), ReceivedAt: n.Now()}
	if _, err := n.Inbox.AddDeadLetter(ctx, d); err != nil {
		return events.Retry, err
	}
	return events.Success, nil
}

// Notifications reads one page of a user's notifications, oldest first.
func (n *Notifier) Notifications(ctx context.Context, userID string, req PageRequest) (Page[Notification], error) {
	if userID == "" {
		return Page[Notification]{}, api.Errorf(api.CodeInvalidRequest, "query parameter user_id is required")
	}
	if !api.ValidID(userID) {
		return Page[Notification]{}, api.Errorf(api.CodeInvalidRequest, "user_id must be 1 to 64 letters, digits, '-' or '_'")
	}
	from, limit, err := req.parse()
	if err != nil {
		return Page[Notification]{}, err
	}
	return n.Inbox.List(ctx, userID, from, limit)
}

// DeadLetters reads one page of the dead letters kept, oldest first.
func (n *Notifier) DeadLetters(ctx context.Context, req PageRequest) (Page[DeadLetter], error) {
	from, limit, err := req.parse()
	if err != nil {
		return Page[DeadLetter]{}, err
	}
	return n.Inbox.DeadLetters(ctx, from, limit)
}

// deadLetterReason says why an event was most likely dropped: an order event
// notifications itself could not take is judged as it judged it; an event
// of another topic was dropped by that topic's own subscriber (orders drops
// a payment event naming an unknown order), whose reason only its logs keep.
func deadLetterReason(ce events.CloudEvent) string {
	switch {
	case ce.ID == "":
		return errPoison.Error() + ": the CloudEvent has no id"
	case ce.Topic != "" && ce.Topic != ordersTopic:
		return fmt.Sprintf("dropped by its subscriber of topic %q (refused, or failed after every retry; that subscriber's log says why)", ce.Topic)
	}
	if _, err := decodeOrderEvent(ce); err != nil {
		return err.Error()
	}
	return "handling failed after every retry"
}

func decodeOrderEvent(ce events.CloudEvent) (OrderEvent, error) {
	if ce.ID == "" {
		return OrderEvent{}, fmt.Errorf("%w: the CloudEvent has no id", errPoison)
	}
	var ev OrderEvent
	if err := ce.DecodeData(&ev); err != nil {
		return OrderEvent{}, fmt.Errorf("%w: data is not an order event: %v", errPoison, err)
	}
	if _, ok := channels[ev.Type]; !ok {
		return OrderEvent{}, fmt.Errorf("%w: unknown event type %q", errPoison, ev.Type)
	}
	if !api.ValidID(ev.UserID) || !api.ValidID(ev.OrderID) {
		return OrderEvent{}, fmt.Errorf("%w: event %s has no valid user_id and order_id", errPoison, ev.Type)
	}
	return ev, nil
}

// notificationID derives a notification's id from its event's id, so that a
// redelivery maps to the same notification.
func notificationID(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return "ntf-" + hex.EncodeToString(sum[:12])
}

func rawJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}
