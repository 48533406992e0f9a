package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
)

// newTestServer serves the users routes over a fake directory.
func newTestServer(t *testing.T) (*httptest.Server, *fakeDirectory) {
	t.Helper()
	reg, dir := newTestRegistry(t)
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := httptest.NewServer(routes(slog.New(slog.DiscardHandler), reg, ready))
	t.Cleanup(srv.Close)
	return srv, dir
}

// do sends a request and returns the status, headers and decoded JSON body.
func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = res.Body.Close() })
	var decoded map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&decoded))
	return res.StatusCode, res.Header, decoded
}

// errorCode returns the code of a JSON error body, checking its shape.
func errorCode(t *testing.T, body map[string]any) api.Code {
	t.Helper()
	require.Contains(t, body, "error", "want an error body, got %v", body)
	e, ok := body["error"].(map[string]any)
	require.True(t, ok, "error is an object: %v", body)
	require.Len(t, e, 2, "error holds exactly code and message: %v", e)
	require.NotEmpty(t, e["message"])
	return api.Code(e["code"].(string))
}

func TestRegisterHandler(t *testing.T) {
	srv, _ := newTestServer(t)

	status, header, body := do(t, srv, http.MethodPost, "/users", `{"name":" Ada ","email":"Ada@Example.com"}`)

	require.Equal(t, http.StatusCreated, status, body)
	assert.Equal(t, "application/json", header.Get("Content-Type"))
	assert.Equal(t, "/users/user-1", header.Get("Location"))
	assert.Equal(t, map[string]any{
		"id":         "user-1",
		"name":       "Ada",
		"email":      "ada@example.com",
		"created_at": testNow.Format(time.RFC3339Nano),
	}, body)
}

func TestRegisterHandlerRejects(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   api.Code
	}{
		{"malformed JSON", `{"name":"Ada",`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"not JSON", `name=Ada`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"empty body", ``, http.StatusBadRequest, api.CodeInvalidRequest},
		{"unknown field", `{"name":"Ada","email":"ada@example.com","admin":true}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"wrong type for name", `{"name":1,"email":"ada@example.com"}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"wrong type for email", `{"name":"Ada","email":["ada@example.com"]}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"array body", `[{"name":"Ada","email":"ada@example.com"}]`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"missing fields", `{}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"missing email", `{"name":"Ada"}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"missing name", `{"email":"ada@example.com"}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"malformed email", `{"name":"Ada","email":"ada"}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"two objects", `{"name":"Ada","email":"ada@example.com"}{}`, http.StatusBadRequest, api.CodeInvalidRequest},
		{"body too large", `{"name":"` + strings.Repeat("a", api.MaxBodyBytes) + `","email":"ada@example.com"}`, api.CodeBodyTooLarge.Status(), api.CodeBodyTooLarge}, // 400: see api.TestDecodeTooLargeIs400
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, dir := newTestServer(t)

			status, header, body := do(t, srv, http.MethodPost, "/users", tt.body)

			assert.Equal(t, tt.wantStatus, status)
			assert.Equal(t, tt.wantCode, errorCode(t, body))
			assert.Empty(t, header.Get("Location"))
			assert.Zero(t, dir.claims, "a rejected request reaches no store")
		})
	}
}

func TestRegisterHandlerDuplicate(t *testing.T) {
	srv, _ := newTestServer(t)
	status, _, _ := do(t, srv, http.MethodPost, "/users", `{"name":"Ada","email":"ada@example.com"}`)
	require.Equal(t, http.StatusCreated, status)

	status, _, body := do(t, srv, http.MethodPost, "/users", `{"name":"Other","email":"ADA@example.com"}`)

	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, api.CodeEmailTaken, errorCode(t, body))
}

func TestRegisterHandlerStoreDown(t *testing.T) {
	srv, dir := newTestServer(t)
	dir.claimErr = fmt.Errorf("insert statestore/email/ada@example.com: %w: connection refused", api.ErrUnavailable)

	status, _, body := do(t, srv, http.MethodPost, "/users", `{"name":"Ada","email":"ada@example.com"}`)

	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, api.CodeDependencyUnavailable, errorCode(t, body))
	assert.NotContains(t, body["error"].(map[string]any)["message"], "connection refused")
}

func TestUserHandler(t *testing.T) {
	srv, _ := newTestServer(t)
	status, _, created := do(t, srv, http.MethodPost, "/users", `{"name":"Ada","email":"ada@example.com"}`)
	require.Equal(t, http.StatusCreated, status)

	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCode   api.Code
	}{
		{name: "known user", method: http.MethodGet, path: "/users/user-1", wantStatus: http.StatusOK},
		{name: "unknown user", method: http.MethodGet, path: "/users/user-404", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "invalid id", method: http.MethodGet, path: "/users/a.b", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "no such route", method: http.MethodGet, path: "/users/user-1/orders", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "listing is not offered", method: http.MethodGet, path: "/users", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
		{name: "delete is not offered", method: http.MethodDelete, path: "/users/user-1", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, srv, tt.method, tt.path, "")

			assert.Equal(t, tt.wantStatus, status)
			if tt.wantCode == "" {
				assert.Equal(t, created, body)
				return
			}
			assert.Equal(t, tt.wantCode, errorCode(t, body))
		})
	}
}

func TestAppHandlerRequiresTheAppToken(t *testing.T) {
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := appHandler("s3cret", slog.New(slog.DiscardHandler), nil, ready)
	apitest.RequireAppToken(t, h, "/users/x")
}
