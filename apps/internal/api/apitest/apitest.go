// Package apitest holds what the apps' unit tests share: api errors, and
// the app token every app's handler checks.
package apitest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// RequireCode asserts that err is an *api.Error with the given code and
// returns it.
func RequireCode(t testing.TB, err error, code api.Code) *api.Error {
	t.Helper()
	require.Error(t, err)
	var e *api.Error
	require.True(t, errors.As(err, &e), "want *api.Error %s, got %T: %v", code, err, err)
	require.Equal(t, code, e.Code, e.Message)
	return e
}

// RequireAppToken checks an app's whole handler, as its main serves it, with
// the app token "s3cret": a call to path without the token or with a wrong
// one is refused with 401, and the probes need none. It fails when an app's
// wiring drops server.RequireAppToken.
func RequireAppToken(t *testing.T, h http.Handler, path string) {
	t.Helper()
	tests := []struct {
		name, path, token string
		want              int
	}{
		{name: "no token", path: path, want: http.StatusUnauthorized},
		{name: "wrong token", path: path, token: "guess", want: http.StatusUnauthorized},
		{name: "probes need none", path: "/readyz", want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, tt.path, nil)
			if tt.token != "" {
				r.Header.Set(server.AppTokenHeader, tt.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tt.want, w.Code)
		})
	}
}
