package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

func TestNewRouter(t *testing.T) {
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready"})
	})
	r := server.NewRouter(ready)
	r.HandleFunc("/widgets/{id}", func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"id": "w1"})
	}).Methods(http.MethodGet)
	h := server.Handler(slog.New(slog.DiscardHandler), r)

	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCode   api.Code // "" when the answer is not an error body
	}{
		{name: "registered route", method: http.MethodGet, path: "/widgets/w1", wantStatus: http.StatusOK},
		{name: "liveness", method: http.MethodGet, path: "/healthz", wantStatus: http.StatusOK},
		{name: "readiness uses the given handler", method: http.MethodGet, path: "/readyz", wantStatus: http.StatusServiceUnavailable},
		{name: "unknown route", method: http.MethodGet, path: "/nope", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "unknown nested route", method: http.MethodGet, path: "/widgets/w1/parts", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "wrong verb on an app route", method: http.MethodDelete, path: "/widgets/w1", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
		{name: "wrong verb on liveness", method: http.MethodPost, path: "/healthz", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
		{name: "wrong verb on readiness", method: http.MethodPut, path: "/readyz", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))

			assert.Equal(t, tt.wantStatus, w.Code)
			assert.NotEmpty(t, w.Header().Get(server.RequestIDHeader), "the middleware wraps every route")
			if tt.wantCode == "" {
				return
			}
			e := requireErrorBody(t, w)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Contains(t, e.Message, tt.path)
		})
	}
}

func TestLiveness(t *testing.T) {
	h := server.NewRouter(http.NotFoundHandler())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))

	require.Equal(t, http.StatusOK, w.Code)
	var body map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	assert.Equal(t, map[string]string{"status": "alive"}, body)
}
