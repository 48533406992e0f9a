package identity_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want identity.Caller
		ok   bool
	}{
		{"customer:u-1", identity.Caller{Role: identity.Customer, Subject: "u-1"}, true},
		{"operator:ops@example.com", identity.Caller{Role: identity.Operator, Subject: "ops@example.com"}, true},
		{"operator:a:b", identity.Caller{Role: identity.Operator, Subject: "a:b"}, true},
		{"customer:", identity.Caller{}, false},
		{"customer:../x", identity.Caller{}, false},
		{"customer:" + strings.Repeat("a", 65), identity.Caller{}, false},
		{"operator:", identity.Caller{}, false},
		{"operator:has space", identity.Caller{}, false},
		{"operator:" + strings.Repeat("a", 256), identity.Caller{}, false},
		{"admin:root", identity.Caller{}, false},
		{"customer", identity.Caller{}, false},
		{"", identity.Caller{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := identity.Parse(tt.in)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
			if ok {
				assert.Equal(t, tt.in, got.String(), "String is Parse's inverse")
			}
		})
	}
}

func TestSees(t *testing.T) {
	ada := identity.Caller{Role: identity.Customer, Subject: "u-ada"}
	ops := identity.Caller{Role: identity.Operator, Subject: "ops"}
	assert.True(t, ada.Sees("u-ada"))
	assert.False(t, ada.Sees("u-grace"))
	assert.False(t, ada.Sees(""))
	assert.True(t, ops.Sees("u-grace"))
	assert.False(t, identity.Caller{}.Sees(""), "no caller sees nothing")
	assert.False(t, identity.Sees(t.Context(), "u-ada"), "a context without a caller sees nothing")
}

func TestSetStripsEveryClientCopy(t *testing.T) {
	h := http.Header{}
	h["X-Ordermesh-Caller"] = []string{"operator:root"}
	h["x-ordermesh-caller"] = []string{"operator:root"}
	h["X-ORDERMESH-CALLER"] = []string{"operator:root"}
	identity.Set(h, identity.Caller{Role: identity.Customer, Subject: "u-1"})
	var values []string
	for name, vs := range h {
		if strings.EqualFold(name, identity.Header) {
			values = append(values, vs...)
		}
	}
	assert.Equal(t, []string{"customer:u-1"}, values)
}

func TestRequire(t *testing.T) {
	var seen identity.Caller
	h := identity.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = identity.From(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}), identity.Customer)
	tests := []struct {
		name   string
		values []string
		want   int
	}{
		{"a customer", []string{"customer:u-1"}, http.StatusNoContent},
		{"no caller", nil, http.StatusForbidden},
		{"two callers", []string{"customer:u-1", "operator:ops"}, http.StatusForbidden},
		{"a role the route does not serve", []string{"operator:ops"}, http.StatusForbidden},
		{"malformed", []string{"customer:a b"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = identity.Caller{}
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			r.Header[identity.Header] = tt.values
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, tt.want, w.Code)
			if tt.want == http.StatusForbidden {
				assert.Contains(t, w.Body.String(), `"code":"forbidden"`)
				assert.Zero(t, seen, "the route was not called")
				return
			}
			assert.Equal(t, identity.Caller{Role: identity.Customer, Subject: "u-1"}, seen)
		})
	}
}
