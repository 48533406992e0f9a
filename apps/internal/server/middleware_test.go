package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// requireErrorBody decodes the JSON error body of a response.
func requireErrorBody(t *testing.T, w *httptest.ResponseRecorder) api.Error {
	t.Helper()
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body map[string]map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	require.Contains(t, body, "error")
	require.Len(t, body["error"], 2, "error body holds exactly code and message: %s", w.Body.String())
	return api.Error{Code: api.Code(body["error"]["code"]), Message: body["error"]["message"]}
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{24}$`)

func TestMiddlewareRequestID(t *testing.T) {
	tests := []struct {
		name      string
		incoming  string
		wantKept  bool // the incoming id is the request's id
		wantFresh bool // a new id was generated
	}{
		{name: "no incoming id gets a fresh one", incoming: "", wantFresh: true},
		{name: "incoming id is propagated", incoming: "req-abc-123", wantKept: true},
		{name: "incoming id at the length limit is kept", incoming: strings.Repeat("r", 128), wantKept: true},
		{name: "overlong incoming id is replaced", incoming: strings.Repeat("r", 129), wantFresh: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			h := server.Middleware(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = server.RequestID(r.Context())
				w.WriteHeader(http.StatusNoContent)
			}))
			r := httptest.NewRequest(http.MethodGet, "/things", nil)
			if tt.incoming != "" {
				r.Header.Set(server.RequestIDHeader, tt.incoming)
			}
			w := httptest.NewRecorder()

			h.ServeHTTP(w, r)

			got := w.Header().Get(server.RequestIDHeader)
			assert.Equal(t, http.StatusNoContent, w.Code)
			assert.Equal(t, got, seen, "the handler's context and the response carry the same id")
			if tt.wantKept {
				assert.Equal(t, tt.incoming, got)
			}
			if tt.wantFresh {
				assert.Regexp(t, generatedID, got)
			}
		})
	}
}

func TestMiddlewareRequestIDsAreUnique(t *testing.T) {
	h := server.Middleware(slog.New(slog.DiscardHandler), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	seen := map[string]bool{}
	for range 100 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		id := w.Header().Get(server.RequestIDHeader)
		require.NotEmpty(t, id)
		assert.False(t, seen[id], "id %s generated twice", id)
		seen[id] = true
	}
}

func TestRequestIDOutsideARequest(t *testing.T) {
	assert.Empty(t, server.RequestID(t.Context()))
}

func TestMiddlewareRecoversPanic(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantJSON   bool // the middleware wrote the internal error body
	}{
		{
			name:       "panic before anything is written becomes a 500 JSON error",
			handler:    func(http.ResponseWriter, *http.Request) { panic("nil map write") },
			wantStatus: http.StatusInternalServerError,
			wantJSON:   true,
		},
		{
			name:       "panic with an error value",
			handler:    func(http.ResponseWriter, *http.Request) { panic(io.ErrUnexpectedEOF) },
			wantStatus: http.StatusInternalServerError,
			wantJSON:   true,
		},
		{
			name: "panic after the status was written keeps that status",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusAccepted)
				panic("late")
			},
			wantStatus: http.StatusAccepted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := server.Middleware(slog.New(slog.NewJSONHandler(&logs, nil)), tt.handler)
			r := httptest.NewRequest(http.MethodPost, "/boom", nil)
			r.Header.Set(server.RequestIDHeader, "req-panic")
			w := httptest.NewRecorder()

			require.NotPanics(t, func() { h.ServeHTTP(w, r) })

			assert.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, "req-panic", w.Header().Get(server.RequestIDHeader))
			if tt.wantJSON {
				e := requireErrorBody(t, w)
				assert.Equal(t, api.CodeInternal, e.Code)
				assert.Equal(t, "internal error", e.Message)
			} else {
				assert.Empty(t, w.Body.String(), "nothing is written after the handler's own status")
			}
			assert.Contains(t, logs.String(), `"msg":"panic"`)
			assert.Contains(t, logs.String(), `"request_id":"req-panic"`)
		})
	}
}

func TestMiddlewareLogsRequests(t *testing.T) {
	tests := []struct {
		path       string
		status     int
		wantLogged bool
	}{
		{"/users/1", http.StatusOK, true},
		{"/users/1", http.StatusServiceUnavailable, true},
		{"/healthz", http.StatusOK, false},
		{"/readyz", http.StatusServiceUnavailable, false},
		{"/metrics", http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+http.StatusText(tt.status), func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := server.Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
			}))

			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tt.path, nil))

			if !tt.wantLogged {
				assert.Empty(t, logs.String())
				return
			}
			var entry map[string]any
			require.NoError(t, json.Unmarshal(logs.Bytes(), &entry), logs.String())
			assert.Equal(t, "request", entry["msg"])
			assert.Equal(t, tt.path, entry["path"])
			assert.EqualValues(t, tt.status, entry["status"])
			assert.NotEmpty(t, entry["request_id"])
		})
	}
}

// An aborted handler (http.ErrAbortHandler, which httputil.ReverseProxy raises
// when the upstream body breaks mid-copy) must reach net/http so that the
// client sees a broken response rather than a complete-looking truncated one.
func TestMiddlewareLetsAbortHandlerThrough(t *testing.T) {
	h := server.Middleware(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"partial":`)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	res, err := srv.Client().Get(srv.URL + "/stream")
	require.NoError(t, err)
	t.Cleanup(func() { _ = res.Body.Close() })
	_, err = io.ReadAll(res.Body)
	assert.Error(t, err, "the client must see the response broken off")
}

func TestRequireAppToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tests := []struct {
		name, token, path, sent string
		want                    int
	}{
		{"no token configured lets everything through", "", "/users", "", http.StatusNoContent},
		{"the sidecar's token", "s3cret", "/users", "s3cret", http.StatusNoContent},
		{"no token sent", "s3cret", "/users", "", http.StatusUnauthorized},
		{"a wrong token", "s3cret", "/users", "s3cret2", http.StatusUnauthorized},
		{"health stays open", "s3cret", "/healthz", "", http.StatusNoContent},
		{"readiness stays open", "s3cret", "/readyz", "", http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.sent != "" {
				r.Header.Set(server.AppTokenHeader, tt.sent)
			}
			w := httptest.NewRecorder()
			server.RequireAppToken(tt.token, ok).ServeHTTP(w, r)
			assert.Equal(t, tt.want, w.Code)
			if tt.want == http.StatusUnauthorized {
				assert.Contains(t, w.Body.String(), `"code":"unauthorized"`)
			}
		})
	}
}
