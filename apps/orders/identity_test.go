package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// asCustomer gives r the caller the gateway would send for an order body:
// the customer named in its user_id (u-1 when it names none that can be).
func asCustomer(r *http.Request, body []byte) *http.Request {
	var in struct {
		UserID string `json:"user_id"`
	}
	_ = json.Unmarshal(body, &in)
	if !api.ValidID(in.UserID) {
		in.UserID = "u-1"
	}
	r.Header.Set(identity.Header, identity.Caller{Role: identity.Customer, Subject: in.UserID}.String())
	return r
}

// The public routes check the caller the gateway carries (defence in
// depth): a customer orders only for itself and reads only its own orders,
// only an operator ships, and a request without a caller is refused. The
// internal route payments calls and Dapr's event delivery carry none.
func TestRoutesCheckTheCaller(t *testing.T) {
	d, f := newTestDesk(t)
	h := routes(slog.New(slog.DiscardHandler), d, http.NotFoundHandler())
	send := func(method, target, caller, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
		if caller != "" {
			r.Header.Set(identity.Header, caller)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	f.users.ids["u-2"] = true
	placed := send(http.MethodPost, "/orders", "customer:u-1", `{"user_id":"u-1","product_id":"p-1","quantity":1}`)
	require.Equal(t, http.StatusCreated, placed.Code, placed.Body.String())
	var o Order
	require.NoError(t, json.Unmarshal(placed.Body.Bytes(), &o))
	before := len(f.orders.events(t))

	tests := []struct {
		name, method, target, caller, body string
		want                               int
		wantCode                           api.Code
	}{
		{"own order", http.MethodGet, "/orders/" + o.ID, "customer:u-1", "", http.StatusOK, ""},
		{"another customer's order", http.MethodGet, "/orders/" + o.ID, "customer:u-2", "", http.StatusNotFound, api.CodeNotFound},
		{"an operator reads it", http.MethodGet, "/orders/" + o.ID, "operator:ops", "", http.StatusOK, ""},
		{"no caller", http.MethodGet, "/orders/" + o.ID, "", "", http.StatusForbidden, api.CodeForbidden},
		{"a malformed caller", http.MethodGet, "/orders/" + o.ID, "customer:u-1\x00", "", http.StatusForbidden, api.CodeForbidden},
		{"ordering for another user", http.MethodPost, "/orders", "customer:u-2", `{"user_id":"u-1","product_id":"p-1","quantity":1}`, http.StatusUnprocessableEntity, api.CodeUnknownUser},
		{"bad input stays a 400 for a customer", http.MethodPost, "/orders", "customer:u-2", `{"user_id":"../x","product_id":"p-1","quantity":1}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"an operator orders", http.MethodPost, "/orders", "operator:ops", `{"user_id":"u-1","product_id":"p-1","quantity":1}`, http.StatusForbidden, api.CodeForbidden},
		{"a customer ships", http.MethodPost, "/orders/" + o.ID + "/ship", "customer:u-1", "", http.StatusForbidden, api.CodeForbidden},
		{"the internal read needs no caller", http.MethodGet, "/internal/orders/" + o.ID, "", "", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := send(tt.method, tt.target, tt.caller, tt.body)
			assert.Equal(t, tt.want, w.Code, w.Body.String())
			if tt.wantCode != "" {
				var body api.ErrorBody
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				assert.Equal(t, tt.wantCode, body.Error.Code)
			}
		})
	}
	assert.Equal(t, before, len(f.orders.events(t)), "the refused calls placed or shipped nothing")
	got, err := d.Order(t.Context(), o.ID)
	require.NoError(t, err)
	assert.Equal(t, "created", got.Status)

	w := send(http.MethodPost, "/orders/"+o.ID+"/ship", "operator:ops", "")
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
}
