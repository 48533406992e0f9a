package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// usersService is the UserDirectory behind Dapr service invocation.
type usersService struct {
	invoker *sidecar.Invoker
	appID   string
}

func (u usersService) CheckUser(ctx context.Context, id string) error {
	err := u.invoker.Call(ctx, u.appID, http.MethodGet, "internal/users/"+id, nil, nil)
	if refusedWith(err, api.CodeNotFound) {
		return ErrUnknownUser
	}
	return err
}

// productsService is the Catalog behind Dapr service invocation.
type productsService struct {
	invoker *sidecar.Invoker
	appID   string
}

func (p productsService) Reserve(ctx context.Context, productID, orderID string, quantity int64) (int64, error) {
	var answer struct {
		Reservation struct {
			PriceCents int64 `json:"price_cents"`
		} `json:"reservation"`
	}
	body := map[string]any{"order_id": orderID, "quantity": quantity}
	err := p.invoker.Call(ctx, p.appID, http.MethodPost, "internal/products/"+productID+"/reservations", body, &answer)
	switch {
	case refusedWith(err, api.CodeNotFound):
		return 0, ErrUnknownProduct
	case refusedWith(err, api.CodeInsufficientStock):
		return 0, ErrInsufficientStock
	case err != nil:
		return 0, err
	}
	return answer.Reservation.PriceCents, nil
}

func (p productsService) Confirm(ctx context.Context, productID, orderID string) error {
	return p.invoker.Call(ctx, p.appID, http.MethodPost, "internal/products/"+productID+"/reservations/"+orderID+"/confirm", nil, nil)
}

func (p productsService) Release(ctx context.Context, productID, orderID string) error {
	return p.invoker.Call(ctx, p.appID, http.MethodDelete, "internal/products/"+productID+"/reservations/"+orderID, nil, nil)
}

// refusedWith reports whether err is the callee's refusal with code.
func refusedWith(err error, code api.Code) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == code
}
