package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

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
