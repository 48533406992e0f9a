package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// What orders' sidecar answers decides a hold: only a clear "found" or "not
// found" from orders itself counts; anything else is "cannot tell".
func TestOrdersServiceOrderStored(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		wantFound bool
		wantErr   bool
	}{
		{"found", http.StatusOK, `{"result":{"id":"o-1"}}`, true, false},
		{"not found", http.StatusOK, `{"refusal":{"code":"not_found","message":"order \"o-1\" not found"}}`, false, false},
		{"another refusal", http.StatusOK, `{"refusal":{"code":"invalid_request","message":"bad id"}}`, false, true},
		{"orders failing", http.StatusServiceUnavailable, `{"error":{"code":"dependency_unavailable","message":"down"}}`, false, true},
		{"orders unreachable", http.StatusInternalServerError, `{"errorCode":"ERR_DIRECT_INVOKE","message":"fail to invoke"}`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				path = r.URL.Path
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			o := ordersService{invoker: sidecar.NewInvoker(srv.URL, "", sidecar.NewHTTPClient(5*time.Second)), appID: "orders"}

			found, err := o.OrderStored(t.Context(), "o-1")

			assert.Equal(t, "/v1.0/invoke/orders/method/internal/orders/o-1", path)
			assert.Equal(t, tt.wantFound, found)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}
