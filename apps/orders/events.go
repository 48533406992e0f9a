package main

import "time"

// Event types on the `orders` topic.
const (
	EventOrderCreated = "order_created"
	EventOrderShipped = "order_shipped"
)

// There is no order_paid event: payments' payment_completed already tells
// every consumer an order was paid, and marking paid is a plain write, not
// an outbox transaction (one less transaction that can fail and stage an
// event; see Desk.Ship).

// Event is the payload of every order event. It is published through the
// transactional outbox together with the state change it describes, so there
// is no order without its event and no event without its order.
type Event struct {
	Type       string    `json:"type"`
	OrderID    string    `json:"order_id"`
	UserID     string    `json:"user_id"`
	ProductID  string    `json:"product_id"`
	Quantity   int64     `json:"quantity"`
	TotalCents int64     `json:"total_cents"`
	Status     string    `json:"status"`
	OccurredAt time.Time `json:"occurred_at"`
}

func eventFor(typ string, o Order, at time.Time) Event {
	return Event{
		Type:       typ,
		OrderID:    o.ID,
		UserID:     o.UserID,
		ProductID:  o.ProductID,
		Quantity:   o.Quantity,
		TotalCents: o.TotalCents,
		Status:     o.Status,
		OccurredAt: at,
	}
}
