package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// testCaller is the caller the gateway would send with a request to target:
// the operator for the dead letters, else the customer whose notifications
// are asked for.
func testCaller(target string) string {
	u, err := url.Parse(target)
	if err == nil && u.Path == "/notifications/dead-letters" {
		return identity.Caller{Role: identity.Operator, Subject: "ops"}.String()
	}
	if err == nil && api.ValidID(u.Query().Get("user_id")) {
		return identity.Caller{Role: identity.Customer, Subject: u.Query().Get("user_id")}.String()
	}
	return identity.Caller{Role: identity.Customer, Subject: "u-1"}.String()
}

// The public routes check the caller the gateway carries (defence in depth);
// events, delivered by Dapr, carry none and need none.
func TestRoutesCheckTheCaller(t *testing.T) {
	h, _ := newTestHandler(t)
	tests := []struct {
		name, target, caller string
		want                 int
	}{
		{"own notifications", "/notifications?user_id=u-1", "customer:u-1", http.StatusOK},
		{"another customer's", "/notifications?user_id=u-2", "customer:u-1", http.StatusNotFound},
		{"no caller", "/notifications?user_id=u-1", "", http.StatusForbidden},
		{"a forged, malformed caller", "/notifications?user_id=u-1", "customer:", http.StatusForbidden},
		{"an operator reading a customer's", "/notifications?user_id=u-1", "operator:ops", http.StatusForbidden},
		{"dead letters, operator", "/notifications/dead-letters", "operator:ops", http.StatusOK},
		{"dead letters, customer", "/notifications/dead-letters", "customer:u-1", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tt.target, nil)
			assert.NoError(t, err)
			if tt.caller != "" {
				r.Header.Set(identity.Header, tt.caller)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tt.want, w.Code, w.Body.String())
		})
	}
}
