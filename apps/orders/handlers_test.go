package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

func TestPlaceHandler(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		setup      func(f deskFakes)
		wantStatus int
		wantCode   api.Code // "" for a created order
	}{
		{name: "created", body: `{"user_id":"u-1","product_id":"p-1","quantity":2}`, wantStatus: http.StatusCreated},
		{name: "unknown field", body: `{"user_id":"u-1","product_id":"p-1","quantity":2,"total_cents":1}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest},
		{name: "quantity as string", body: `{"user_id":"u-1","product_id":"p-1","quantity":"2"}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest},
		{name: "missing quantity", body: `{"user_id":"u-1","product_id":"p-1"}`, wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest},
		{name: "unknown user", body: `{"user_id":"u-9","product_id":"p-1","quantity":2}`, wantStatus: http.StatusUnprocessableEntity, wantCode: api.CodeUnknownUser},
		{name: "unknown product", body: `{"user_id":"u-1","product_id":"p-9","quantity":2}`, wantStatus: http.StatusUnprocessableEntity, wantCode: api.CodeUnknownProduct},
		{name: "stock short", body: `{"user_id":"u-1","product_id":"p-1","quantity":11}`, wantStatus: http.StatusConflict, wantCode: api.CodeInsufficientStock},
		{
			name:       "users unavailable",
			body:       `{"user_id":"u-1","product_id":"p-1","quantity":2}`,
			setup:      func(f deskFakes) { f.users.err = fmt.Errorf("users answered 500: %w", api.ErrUnavailable) },
			wantStatus: http.StatusServiceUnavailable,
			wantCode:   api.CodeDependencyUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newTestDesk(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			h := routes(slog.New(slog.DiscardHandler), d, http.NotFoundHandler())
			w := httptest.NewRecorder()

			h.ServeHTTP(w, asCustomer(httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(tt.body)), []byte(tt.body)))

			assert.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			if tt.wantCode == "" {
				var o Order
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &o))
				assert.Equal(t, int64(2500), o.TotalCents)
				assert.Equal(t, "/orders/"+o.ID, w.Header().Get("Location"))
				return
			}
			var body api.ErrorBody
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			assert.Equal(t, tt.wantCode, body.Error.Code)
			assert.NotContains(t, w.Body.String(), "answered 500", "internal details stay in the log")
		})
	}
}
