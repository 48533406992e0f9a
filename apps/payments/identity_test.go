package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// The public routes check the caller the gateway carries (defence in depth):
// a customer pays and reads only its own orders' payments; another
// customer's order is as unknown as one that does not exist.
func TestRoutesCheckTheCaller(t *testing.T) {
	h, f := newTestHandler(t)
	paid := serve(t, h, http.MethodPost, "/payments", `{"order_id":"o-1","amount_cents":2500}`, "key-1")
	require.Equal(t, http.StatusCreated, paid.Code, paid.Body.String())
	payID := decodeMap(t, paid)["id"].(string)
	before := f.snapshot()

	send := func(method, target, caller, body string, keys ...string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
		if caller != "" {
			r.Header.Set(identity.Header, caller)
		}
		for _, k := range keys {
			r.Header.Set(IdempotencyKeyHeader, k)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		name, method, target, caller, body, key string
		want                                    int
		wantCode                                api.Code
	}{
		{"own payment", http.MethodGet, "/payments/" + payID, "customer:u-1", "", "", http.StatusOK, ""},
		{"another customer's payment", http.MethodGet, "/payments/" + payID, "customer:u-2", "", "", http.StatusNotFound, api.CodeNotFound},
		{"paying another customer's order", http.MethodPost, "/payments", "customer:u-2", `{"order_id":"o-2","amount_cents":1000}`, "key-2", http.StatusUnprocessableEntity, api.CodeUnknownOrder},
		{"no caller", http.MethodPost, "/payments", "", `{"order_id":"o-2","amount_cents":1000}`, "key-3", http.StatusForbidden, api.CodeForbidden},
		{"an operator pays", http.MethodPost, "/payments", "operator:ops", `{"order_id":"o-2","amount_cents":1000}`, "key-4", http.StatusForbidden, api.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := send(tt.method, tt.target, tt.caller, tt.body, tt.key)
			assert.Equal(t, tt.want, w.Code, w.Body.String())
			if tt.wantCode != "" {
				var body api.ErrorBody
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				assert.Equal(t, tt.wantCode, body.Error.Code)
			}
		})
	}
	assert.Equal(t, before, f.snapshot(), "the refused calls paid nothing")
}
