package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	dapr "github.com/dapr/go-sdk/client"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// ordersService is the OrderDirectory behind Dapr service invocation of the
// orders app's internal route (refusals in a 200, see api.InternalAnswer).
type ordersService struct {
	invoker *sidecar.Invoker
	appID   string
}

func (o ordersService) Order(ctx context.Context, id string) (Order, error) {
	var order Order
	err := o.invoker.Call(ctx, o.appID, http.MethodGet, "internal/orders/"+id, nil, &order)
	var refusal *api.Error
	if errors.As(err, &refusal) && refusal.Code == api.CodeNotFound {
		return Order{}, ErrUnknownOrder
	}
	return order, err
}

// publisher is the part of the Dapr client that publishes events.
type publisher interface {
	PublishEvent(ctx context.Context, pubsubName, topicName string, data any, opts ...dapr.PublishEventOption) error
}

// cloudEventID is the publish metadata that sets the CloudEvent id Dapr wraps
// the payload in (Dapr otherwise makes up a new id on every publish).
const cloudEventID = "cloudevent.id"

// brokerEvents is Events on a Dapr pub/sub component. Each payment's event
// carries the payment id as its CloudEvent id, so the event published again
// by a resumed payment is recognisably the first one, and consumers that
// keep events by id take it once.
type brokerEvents struct {
	client publisher
	pubsub string
	topic  string
}

func (b brokerEvents) PaymentCompleted(ctx context.Context, p Payment) error {
	meta := map[string]string{cloudEventID: p.ID}
	if err := b.client.PublishEvent(ctx, b.pubsub, b.topic, completedEvent(p), dapr.PublishEventWithMetadata(meta)); err != nil {
		return fmt.Errorf("publish %s of payment %s to %s/%s: %w: %w", EventPaymentCompleted, p.ID, b.pubsub, b.topic, api.ErrUnavailable, err)
	}
	return nil
}
