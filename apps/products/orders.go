package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// ordersService is the OrderDirectory behind Dapr service invocation: the
// internal order read orders serves (dapr/config.yaml lets products call it).
type ordersService struct {
	invoker *sidecar.Invoker
	appID   string
}

func (o ordersService) OrderStored(ctx context.Context, orderID string) (bool, error) {
	err := o.invoker.Call(ctx, o.appID, http.MethodGet, "internal/orders/"+orderID, nil, nil)
	var refusal *api.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &refusal) && refusal.Code == api.CodeNotFound:
		return false, nil
	}
	return false, err
}
