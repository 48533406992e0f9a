package main

import (
	"context"
	"errors"
	"net/http"

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
