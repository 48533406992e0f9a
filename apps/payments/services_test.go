package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	dapr "github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// fakePublisher records what the Dapr client would send to the sidecar: the
// options are applied to the request the SDK builds, as the SDK does.
type fakePublisher struct {
	requests []*pb.PublishEventRequest
	data     []any
	err      error
}

func (p *fakePublisher) PublishEvent(_ context.Context, pubsubName, topicName string, data any, opts ...dapr.PublishEventOption) error {
	req := &pb.PublishEventRequest{PubsubName: pubsubName, Topic: topicName}
	for _, o := range opts {
		o(req)
	}
	p.requests = append(p.requests, req)
	p.data = append(p.data, data)
	return p.err
}

func TestBrokerEventsPublishesPaymentCompleted(t *testing.T) {
	pub := &fakePublisher{}
	events := brokerEvents{client: pub, pubsub: "orderpubsub", topic: "payments"}
	p := Payment{ID: "pay-1", OrderID: "o-1", AmountCents: 2500, Status: StatusCompleted, CreatedAt: testNow}

	// Published twice, as a resumed payment is: both are one event.
	for range 2 {
		require.NoError(t, events.PaymentCompleted(t.Context(), p))
	}

	require.Len(t, pub.requests, 2)
	for i, req := range pub.requests {
		assert.Equal(t, "orderpubsub", req.GetPubsubName())
		assert.Equal(t, "payments", req.GetTopic())
		assert.Equal(t, map[string]string{"cloudevent.id": "pay-1"}, req.GetMetadata(), "the CloudEvent id is the payment id")
		payload, err := json.Marshal(pub.data[i])
		require.NoError(t, err)
		assert.JSONEq(t, `{
			"type": "payment_completed",
			"payment_id": "pay-1",
			"order_id": "o-1",
			"amount_cents": 2500,
			"occurred_at": "`+testNow.Format(time.RFC3339Nano)+`"
		}`, string(payload))
	}
	assert.Equal(t, pub.data[0], pub.data[1], "a re-publish carries the same payload")
}

func TestBrokerEventsFailureIsUnavailable(t *testing.T) {
	pub := &fakePublisher{err: errors.New("rpc error: code = Unavailable")}
	events := brokerEvents{client: pub, pubsub: "orderpubsub", topic: "payments"}

	err := events.PaymentCompleted(t.Context(), Payment{ID: "pay-1"})

	assert.ErrorIs(t, err, api.ErrUnavailable)
}

// A Cashier announces the payment it stored, with that payment's id.
func TestPayAnnouncesThePayment(t *testing.T) {
	f := newFixture(t)
	pub := &fakePublisher{}
	f.cashier.events = brokerEvents{client: pub, pubsub: "orderpubsub", topic: "payments"}

	p, _, err := f.cashier.Pay(t.Context(), "key-1", request("o-1", 2500))

	require.NoError(t, err)
	require.Len(t, pub.data, 1)
	assert.Equal(t, completedEvent(p), pub.data[0])
	assert.Equal(t, p.ID, pub.data[0].(Event).PaymentID)
	assert.Equal(t, p.ID, pub.requests[0].GetMetadata()["cloudevent.id"])
}

func TestOrdersService(t *testing.T) {
	order := Order{ID: "o-1", UserID: "u-1", ProductID: "p-1", Quantity: 2, TotalCents: 2500, Status: "created"}
	result, err := json.Marshal(order)
	require.NoError(t, err)

	tests := []struct {
		name     string
		status   int
		answer   any
		want     Order
		wantIs   error
		wantCode api.Code
	}{
		{name: "known order", status: http.StatusOK, answer: api.InternalAnswer{Result: result}, want: order},
		{name: "unknown order", status: http.StatusOK, answer: api.InternalAnswer{Refusal: api.Errorf(api.CodeNotFound, "order o-1 not found")}, wantIs: ErrUnknownOrder},
		{name: "another refusal", status: http.StatusOK, answer: api.InternalAnswer{Refusal: api.Errorf(api.CodeInvalidRequest, "no")}, wantCode: api.CodeInvalidRequest},
		{name: "orders failing", status: http.StatusInternalServerError, answer: api.ErrorBody{Error: api.Error{Code: api.CodeInternal, Message: "internal error"}}, wantIs: api.ErrUnavailable},
		{name: "breaker open", status: http.StatusInternalServerError, answer: map[string]string{"errorCode": "ERR_DIRECT_INVOKE", "message": "circuit breaker is open"}, wantIs: api.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotPath, gotMethod string
			sidecarSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotMethod, gotPath = r.Method, r.URL.Path
				api.WriteJSON(w, tt.status, tt.answer)
			}))
			t.Cleanup(sidecarSrv.Close)
			orders := ordersService{invoker: sidecar.NewInvoker(sidecarSrv.URL, "", sidecarSrv.Client()), appID: "orders-e2e"}

			got, err := orders.Order(t.Context(), "o-1")

			assert.Equal(t, http.MethodGet, gotMethod)
			assert.Equal(t, "/v1.0/invoke/orders-e2e/method/internal/orders/o-1", gotPath)
			switch {
			case tt.wantIs != nil:
				assert.ErrorIs(t, err, tt.wantIs)
			case tt.wantCode != "":
				apitest.RequireCode(t, err, tt.wantCode)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestOrdersServiceUnreachable(t *testing.T) {
	sidecarSrv := httptest.NewServer(http.NotFoundHandler())
	sidecarSrv.Close()
	orders := ordersService{invoker: sidecar.NewInvoker(sidecarSrv.URL, "", sidecarSrv.Client()), appID: "orders"}

	_, err := orders.Order(t.Context(), "o-1")

	assert.ErrorIs(t, err, api.ErrUnavailable)
}
