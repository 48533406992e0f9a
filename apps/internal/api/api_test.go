package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
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

type payload struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// decodeBody runs api.Decode over body the way a handler would.
func decodeBody(t *testing.T, body string) (payload, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	w := httptest.NewRecorder()
	var p payload
	err := api.Decode(w, r, &p)
	return p, err
}

// requireAPIError asserts err is an *api.Error and returns it.
func requireAPIError(t *testing.T, err error) *api.Error {
	t.Helper()
	require.Error(t, err)
	var e *api.Error
	require.True(t, errors.As(err, &e), "want *api.Error, got %T: %v", err, err)
	return e
}

func TestDecode(t *testing.T) {
	tooLargeValue := `{"name":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	tooLargeTrailer := `{"name":"a"}` + strings.Repeat(" ", api.MaxBodyBytes)

	tests := []struct {
		name        string
		body        string
		want        payload
		wantCode    api.Code // "" means success
		wantMessage string   // a substring of the message
	}{
		{name: "valid object", body: `{"name":"box","count":3}`, want: payload{Name: "box", Count: 3}},
		{name: "valid object with surrounding whitespace", body: " \n{\"name\":\"box\"}\n ", want: payload{Name: "box"}},
		{name: "valid object at exactly the limit", body: `{"name":"` + strings.Repeat("a", api.MaxBodyBytes-len(`{"name":""}`)) + `"}`,
			want: payload{Name: strings.Repeat("a", api.MaxBodyBytes-len(`{"name":""}`))}},
		{name: "truncated JSON", body: `{"name":`, wantCode: api.CodeInvalidRequest, wantMessage: "not complete JSON"},
		{name: "syntax error", body: `{"name" "box"}`, wantCode: api.CodeInvalidRequest, wantMessage: "not valid JSON"},
		{name: "not JSON at all", body: `name=box`, wantCode: api.CodeInvalidRequest, wantMessage: "not valid JSON"},
		{name: "unknown field", body: `{"name":"box","colour":"red"}`, wantCode: api.CodeInvalidRequest, wantMessage: `unknown field "colour"`},
		{name: "wrong type", body: `{"count":"three"}`, wantCode: api.CodeInvalidRequest, wantMessage: `field "count" must be a int`},
		{name: "array instead of object", body: `[1,2]`, wantCode: api.CodeInvalidRequest, wantMessage: "must be a JSON object"},
		{name: "empty body", body: ``, wantCode: api.CodeInvalidRequest, wantMessage: "empty"},
		{name: "two JSON values", body: `{"name":"a"}{"name":"b"}`, wantCode: api.CodeInvalidRequest, wantMessage: "single JSON object"},
		{name: "object then garbage", body: `{"name":"a"} x`, wantCode: api.CodeInvalidRequest, wantMessage: "single JSON object"},
		{name: "value over MaxBodyBytes", body: tooLargeValue, wantCode: api.CodeBodyTooLarge, wantMessage: fmt.Sprint(api.MaxBodyBytes)},
		{name: "small value padded over MaxBodyBytes", body: tooLargeTrailer, wantCode: api.CodeBodyTooLarge, wantMessage: fmt.Sprint(api.MaxBodyBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBody(t, tt.body)
			if tt.wantCode == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			e := requireAPIError(t, err)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Contains(t, e.Message, tt.wantMessage)
		})
	}
}

// A body over the limit is a client error like any other bad body: 400, with
// its own code.
func TestDecodeTooLargeIs400(t *testing.T) {
	_, err := decodeBody(t, `{"name":"`+strings.Repeat("a", api.MaxBodyBytes+1)+`"}`)
	e := requireAPIError(t, err)
	require.Equal(t, api.CodeBodyTooLarge, e.Code)

	w := httptest.NewRecorder()
	api.WriteError(w, httptest.NewRequest(http.MethodPost, "/", nil), slog.New(slog.DiscardHandler), err)

	assert.Equal(t, http.StatusBadRequest, e.Code.Status())
	assert.Equal(t, http.StatusBadRequest, w.Code)
}

// The README promises bodies up to 64 KiB: the limit is written out here, not
// read from api.MaxBodyBytes, so that changing the constant fails a test.
func TestDecodeBodyLimitIs64KiB(t *testing.T) {
	const limit = 64 << 10
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"exactly 64 KiB", limit, false},
		{"one byte over", limit + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix, suffix := `{"name":"a"`, `}`
			body := prefix + strings.Repeat(" ", tt.size-len(prefix)-len(suffix)) + suffix
			require.Len(t, body, tt.size)

			_, err := decodeBody(t, body)

			if !tt.wantErr {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, api.CodeBodyTooLarge, requireAPIError(t, err).Code)
		})
	}
}

func TestCodeStatus(t *testing.T) {
	tests := []struct {
		code api.Code
		want int
	}{
		{api.CodeInvalidRequest, http.StatusBadRequest},
		// CodeBodyTooLarge: see TestDecodeTooLargeIs413.
		{api.CodeNotFound, http.StatusNotFound},
		{api.CodeMethodNotAllowed, http.StatusMethodNotAllowed},
		{api.CodeConflict, http.StatusConflict},
		{api.CodeEmailTaken, http.StatusConflict},
		{api.CodeInsufficientStock, http.StatusConflict},
		{api.CodeInvalidState, http.StatusConflict},
		{api.CodeUnprocessable, http.StatusUnprocessableEntity},
		{api.CodeUnknownUser, http.StatusUnprocessableEntity},
		{api.CodeUnknownProduct, http.StatusUnprocessableEntity},
		{api.CodeDependencyUnavailable, http.StatusServiceUnavailable},
		{api.CodeInternal, http.StatusInternalServerError},
		{api.Code("no_such_code"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			assert.Equal(t, tt.want, tt.code.Status())
		})
	}
}

func TestWriteError(t *testing.T) {
	const secret = "dsn=postgres://admin:hunter2@db"
	tests := []struct {
		name        string
		err         error
		wantStatus  int
		wantCode    api.Code
		wantMessage string
		wantLogged  bool
	}{
		{
			name:        "api error keeps code and status",
			err:         api.Errorf(api.CodeEmailTaken, "email %s is already registered", "a@b.co"),
			wantStatus:  http.StatusConflict,
			wantCode:    api.CodeEmailTaken,
			wantMessage: "email a@b.co is already registered",
		},
		{
			name:        "wrapped api error keeps code and status",
			err:         fmt.Errorf("place order: %w", api.Errorf(api.CodeUnknownUser, "user 7 does not exist")),
			wantStatus:  http.StatusUnprocessableEntity,
			wantCode:    api.CodeUnknownUser,
			wantMessage: "user 7 does not exist",
		},
		{
			name:       "dependency unavailable is 503 without details",
			err:        fmt.Errorf("get statestore/user/1 (%s): %w", secret, api.ErrUnavailable),
			wantStatus: http.StatusServiceUnavailable,
			wantCode:   api.CodeDependencyUnavailable,
			wantLogged: true,
		},
		{
			name:       "joined dependency error is 503",
			err:        errors.Join(errors.New(secret), api.ErrUnavailable),
			wantStatus: http.StatusServiceUnavailable,
			wantCode:   api.CodeDependencyUnavailable,
			wantLogged: true,
		},
		{
			name:        "any other error is 500 internal without details",
			err:         fmt.Errorf("decode state: %w", errors.New(secret)),
			wantStatus:  http.StatusInternalServerError,
			wantCode:    api.CodeInternal,
			wantMessage: "internal error",
			wantLogged:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/users/1", nil)

			api.WriteError(w, r, log, tt.err)

			assert.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			assert.NotContains(t, w.Body.String(), "hunter2", "error details must not reach the client")

			var body map[string]map[string]string
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
			require.Contains(t, body, "error")
			assert.Len(t, body["error"], 2, "error body holds exactly code and message")
			assert.Equal(t, string(tt.wantCode), body["error"]["code"])
			assert.NotEmpty(t, body["error"]["message"])
			if tt.wantMessage != "" {
				assert.Equal(t, tt.wantMessage, body["error"]["message"])
			}

			if tt.wantLogged {
				assert.Contains(t, logs.String(), "hunter2", "the details belong in the log")
			} else {
				assert.Empty(t, logs.String(), "client errors are not logged")
			}
		})
	}
}

func TestErrorHandlers(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.Handler
		method     string
		wantStatus int
		wantCode   api.Code
	}{
		{"not found", api.NotFoundHandler(), http.MethodGet, http.StatusNotFound, api.CodeNotFound},
		{"method not allowed", api.MethodNotAllowedHandler(), http.MethodPatch, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.handler.ServeHTTP(w, httptest.NewRequest(tt.method, "/nowhere", nil))

			assert.Equal(t, tt.wantStatus, w.Code)
			var body api.ErrorBody
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			assert.Equal(t, tt.wantCode, body.Error.Code)
			assert.Contains(t, body.Error.Message, "/nowhere")
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true},
		{"42", true},
		{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", true},
		{"Order_7-b", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"a b", false},
		{"a/b", false},
		{"..", false},
		{"a||b", false},
		{"a.b", false},
		{"a%2Fb", false},
		{"é", false},
		{"a\n", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.id), func(t *testing.T) {
			assert.Equal(t, tt.want, api.ValidID(tt.id))
		})
	}
}

func TestDecodeRejectsDeepNesting(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"flat", `{"name":"a"}`, true},
		{"brackets inside a string do not count", `{"name":"` + strings.Repeat("[", 100) + `"}`, true},
		{"escaped quote then brackets in a string", `{"name":"\"` + strings.Repeat("{", 100) + `"}`, true},
		{"too deep", `{"name":` + strings.Repeat("[", api.MaxJSONDepth+1) + strings.Repeat("]", api.MaxJSONDepth+1) + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeBody(t, tt.body)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			e := requireAPIError(t, err)
			assert.Equal(t, api.CodeInvalidRequest, e.Code)
			assert.Contains(t, e.Message, "nests deeper")
		})
	}
}
