package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	res, err := u.invoker.Invoke(ctx, u.appID, http.MethodGet, "users/"+id, nil)
	if err != nil {
		return err
	}
	switch res.Status {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return ErrUnknownUser
	}
	return unexpected(u.appID, res)
}

// productsService is the Catalog behind Dapr service invocation.
type productsService struct {
	invoker *sidecar.Invoker
	appID   string
}

func (p productsService) Product(ctx context.Context, id string) (Product, error) {
	res, err := p.invoker.Invoke(ctx, p.appID, http.MethodGet, "products/"+id, nil)
	if err != nil {
		return Product{}, err
	}
	switch res.Status {
	case http.StatusOK:
		var prod Product
		return prod, res.DecodeJSON(&prod)
	case http.StatusNotFound:
		return Product{}, ErrUnknownProduct
	}
	return Product{}, unexpected(p.appID, res)
}

func (p productsService) Reserve(ctx context.Context, productID, orderID string, quantity int64) error {
	body := map[string]any{"order_id": orderID, "quantity": quantity}
	res, err := p.invoker.Invoke(ctx, p.appID, http.MethodPost, "products/"+productID+"/reservations", body)
	if err != nil {
		return err
	}
	switch {
	case res.Status == http.StatusCreated || res.Status == http.StatusOK:
		return nil
	case res.Status == http.StatusNotFound:
		return ErrUnknownProduct
	case res.Status == http.StatusConflict && errorCode(res.Body) == api.CodeInsufficientStock:
		return ErrInsufficientStock
	}
	return unexpected(p.appID, res)
}

func (p productsService) Release(ctx context.Context, productID, orderID string) error {
	res, err := p.invoker.Invoke(ctx, p.appID, http.MethodDelete, "products/"+productID+"/reservations/"+orderID, nil)
	if err != nil {
		return err
	}
	if res.Status != http.StatusNoContent {
		return unexpected(p.appID, res)
	}
	return nil
}

func errorCode(body []byte) api.Code {
	var e api.ErrorBody
	_ = json.Unmarshal(body, &e)
	return e.Error.Code
}

// unexpected reports an answer the caller has no meaning for as the
// dependency being unavailable: the request may succeed later.
func unexpected(appID string, res sidecar.Response) error {
	return fmt.Errorf("%s answered %d (%s): %w", appID, res.Status, errorCode(res.Body), api.ErrUnavailable)
}
