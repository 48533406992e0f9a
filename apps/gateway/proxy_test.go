package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/config"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// seenRequest is what the fake sidecar received.
type seenRequest struct {
	Method     string
	Path       string
	RequestURI string
	RawQuery   string
	Header     http.Header
	Body       string
}

// fakeSidecar is an httptest server posing as the gateway's Dapr sidecar. It
// records each request and answers with respond.
type fakeSidecar struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newFakeSidecar(t *testing.T, respond http.HandlerFunc) *fakeSidecar {
	t.Helper()
	s := &fakeSidecar{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.mu.Lock()
		s.seen = append(s.seen, seenRequest{
			Method: r.Method, Path: r.URL.Path, RequestURI: r.RequestURI, RawQuery: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: string(body),
		})
		s.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// only returns the single request the sidecar received.
func (s *fakeSidecar) only(t *testing.T) seenRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Len(t, s.seen, 1)
	return s.seen[0]
}

func newTestGateway(t *testing.T, sidecarURL string) *Gateway {
	t.Helper()
	return &Gateway{Sidecar: sidecarURL, Client: sidecar.NewHTTPClient(5 * time.Second), Log: slog.New(slog.DiscardHandler)}
}

// answer returns a handler that writes status and body as JSON.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// serve sends a request through h and returns the recorded response.
func serve(t *testing.T, h http.Handler, method, target, body string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, vs := range header {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestForwardRewritesTheRequest(t *testing.T) {
	tests := []struct {
		name           string
		app            string
		method         string
		target         string
		body           string
		header         http.Header
		wantPath       string
		wantRequestURI string
		wantHeader     http.Header
	}{
		{
			name:           "path and query",
			app:            "users",
			method:         http.MethodGet,
			target:         "/api/users/42?x=1",
			wantPath:       "/v1.0/invoke/users/method/users/42",
			wantRequestURI: "/v1.0/invoke/users/method/users/42?x=1",
		},
		{
			name:           "collection root",
			app:            "products",
			method:         http.MethodGet,
			target:         "/api/products",
			wantPath:       "/v1.0/invoke/products/method/products",
			wantRequestURI: "/v1.0/invoke/products/method/products",
		},
		{
			name:           "body, verb and headers are kept",
			app:            "orders",
			method:         http.MethodPost,
			target:         "/api/orders",
			body:           `{"user_id":"u-1","product_id":"p-1","quantity":2}`,
			header:         http.Header{"Idempotency-Key": {"key-123"}, "Content-Type": {"application/json"}, "X-Request-Id": {"req-9"}},
			wantPath:       "/v1.0/invoke/orders/method/orders",
			wantRequestURI: "/v1.0/invoke/orders/method/orders",
			wantHeader:     http.Header{"Idempotency-Key": {"key-123"}, "Content-Type": {"application/json"}, "X-Request-Id": {"req-9"}},
		},
		{
			name:           "delete of a nested resource",
			app:            "products",
			method:         http.MethodDelete,
			target:         "/api/products/p-1/reservations/o-1",
			wantPath:       "/v1.0/invoke/products/method/products/p-1/reservations/o-1",
			wantRequestURI: "/v1.0/invoke/products/method/products/p-1/reservations/o-1",
		},
		{
			name:           "escaped characters stay escaped",
			app:            "users",
			method:         http.MethodGet,
			target:         "/api/users/a%2Fb?q=%20x",
			wantPath:       "/v1.0/invoke/users/method/users/a/b",
			wantRequestURI: "/v1.0/invoke/users/method/users/a%2Fb?q=%20x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newFakeSidecar(t, answer(http.StatusOK, `{"ok":true}`))
			gw := newTestGateway(t, sc.URL)

			w := serve(t, gw.Forward(tt.app, 0), tt.method, tt.target, tt.body, tt.header)

			assert.Equal(t, http.StatusOK, w.Code)
			assert.JSONEq(t, `{"ok":true}`, w.Body.String())
			got := sc.only(t)
			assert.Equal(t, tt.method, got.Method)
			assert.Equal(t, tt.wantPath, got.Path)
			assert.Equal(t, tt.wantRequestURI, got.RequestURI)
			assert.Equal(t, tt.body, got.Body)
			for k, v := range tt.wantHeader {
				assert.Equal(t, v, got.Header.Values(k), "header %s", k)
			}
			assert.NotEmpty(t, got.Header.Get("X-Forwarded-For"))
			assert.Equal(t, "example.com", got.Header.Get("X-Forwarded-Host"), "the public host is passed on")
		})
	}
}

func TestForwardDropsClientForwardedHeader(t *testing.T) {
	sc := newFakeSidecar(t, answer(http.StatusOK, `{}`))
	gw := newTestGateway(t, sc.URL)

	serve(t, gw.Forward("users", 0), http.MethodGet, "/api/users/1", "", http.Header{
		"Forwarded":       {"for=10.9.9.9;host=evil.example"},
		"X-Forwarded-For": {"10.9.9.9"},
	})

	got := sc.only(t)
	assert.Empty(t, got.Header.Get("Forwarded"))
	assert.NotContains(t, got.Header.Get("X-Forwarded-For"), "10.9.9.9", "clients cannot forge their address")
}

func TestForwardPassesAppAnswersThrough(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"created", http.StatusCreated, `{"id":"u-1","name":"Ada"}`},
		{"app's own not found", http.StatusNotFound, `{"error":{"code":"not_found","message":"user \"42\" not found"}}` + "\n"},
		{"app's own conflict", http.StatusConflict, `{"error":{"code":"email_taken","message":"email a@b.co is already registered"}}` + "\n"},
		{"app's own 503", http.StatusServiceUnavailable, `{"error":{"code":"dependency_unavailable","message":"try again later"}}` + "\n"},
		{"app's own 500", http.StatusInternalServerError, `{"error":{"code":"internal","message":"internal error"}}` + "\n"},
		{"non-JSON error", http.StatusBadGateway, "upstream hiccup\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newFakeSidecar(t, answer(tt.status, tt.body))
			gw := newTestGateway(t, sc.URL)

			w := serve(t, gw.Forward("users", 0), http.MethodGet, "/api/users/42", "", nil)

			assert.Equal(t, tt.status, w.Code)
			assert.Equal(t, tt.body, w.Body.String(), "the body passes byte for byte")
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
		})
	}
}

func TestForwardLargeErrorBodyPassesThrough(t *testing.T) {
	tests := []struct {
		name    string
		chunked bool
	}{
		{name: "with a content length", chunked: false},
		{name: "chunked", chunked: true},
	}
	body := `{"error":{"code":"invalid_request","message":"` + strings.Repeat("x", 100<<10) + `"}}`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newFakeSidecar(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				// Without a Content-Length, net/http chunks any body over
				// 2 KiB, as it does the apps' own JSON answers.
				if !tt.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, body)
			})
			gw := newTestGateway(t, sc.URL)

			w := serve(t, gw.Forward("users", 0), http.MethodPost, "/api/users", "{}", nil)

			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.Equal(t, len(body), w.Body.Len())
			assert.True(t, w.Body.String() == body, "the body passes byte for byte")
		})
	}
}

func TestForwardTurnsSidecarErrorsInto503(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{
			name:   "circuit breaker open",
			status: http.StatusInternalServerError,
			body:   `{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: users, err: circuit breaker is open"}`,
		},
		{
			name:   "target app down",
			status: http.StatusInternalServerError,
			body:   `{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: users, err: rpc error: code = Unavailable desc = connection refused"}`,
		},
		{
			name:   "timeout",
			status: http.StatusGatewayTimeout,
			body:   `{"errorCode":"ERR_DIRECT_INVOKE","message":"context deadline exceeded"}`,
		},
		{
			name:   "unknown app id",
			status: http.StatusBadRequest,
			body:   `{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to resolve address for 'users-dapr.default.svc.cluster.local'"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newFakeSidecar(t, answer(tt.status, tt.body))
			gw := newTestGateway(t, sc.URL)

			w := serve(t, gw.Forward("users", 0), http.MethodGet, "/api/users/42", "", nil)

			assert.Equal(t, http.StatusServiceUnavailable, w.Code)
			assert.Equal(t, api.CodeDependencyUnavailable, requireErrorBody(t, w).Code)
			assert.NotContains(t, w.Body.String(), "ERR_DIRECT_INVOKE", "sidecar details stay in the log")
			assert.NotContains(t, w.Body.String(), "failed to")
		})
	}
}

func TestForwardSidecarUnreachable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close() // nothing listens there any more
	gw := newTestGateway(t, url)

	w := serve(t, gw.Forward("orders", 0), http.MethodPost, "/api/orders", `{"user_id":"u-1"}`, nil)

	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, api.CodeDependencyUnavailable, requireErrorBody(t, w).Code)
	assert.NotContains(t, w.Body.String(), "refused")
}

func TestForwardBadSidecarURLPanics(t *testing.T) {
	gw := newTestGateway(t, "http://[::1")
	assert.Panics(t, func() { gw.Forward("users", 0) })
}

// defaultPeers are the app ids a gateway calls when nothing overrides them.
var defaultPeers = config.LoadPeers(func(string) string { return "" })

// testRoutes is the gateway's router over a test identity provider, with a
// stand-in for /api/status.
func testRoutes(gw *Gateway, idp *testIdP, peers config.Peers) http.Handler {
	status := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return routes(slog.New(slog.DiscardHandler), gw, idp.authenticator(), peers, Timeouts{}, http.NotFoundHandler(),
		map[string]http.Handler{"GET /api/status": status})
}

func TestRoutes(t *testing.T) {
	sc := newFakeSidecar(t, answer(http.StatusOK, `[]`))
	idp := newTestIdP(t)
	// The end-to-end harness renames the apps; the public paths stay.
	peers := config.Peers{Users: "users-e2e", Products: "products-e2e", Orders: "orders-e2e", Payments: "payments-e2e", Notifications: "notifications-e2e"}
	h := testRoutes(newTestGateway(t, sc.URL), idp, peers)
	customer := identity.Caller{Role: identity.Customer, Subject: "u-1"}

	tests := []struct {
		name       string
		method     string
		target     string
		as         identity.Caller // zero: no token
		wantStatus int
		wantPath   string // "" when the sidecar must not be called
	}{
		{name: "sign up, no token", method: http.MethodPost, target: "/api/users", wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/users-e2e/method/users"},
		{name: "own user", method: http.MethodGet, target: "/api/users/u-1", as: customer, wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/users-e2e/method/users/u-1"},
		{name: "another user", method: http.MethodGet, target: "/api/users/u-2", as: customer, wantStatus: http.StatusNotFound},
		{name: "products root", method: http.MethodGet, target: "/api/products", as: customer, wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/products-e2e/method/products"},
		{name: "add a product", method: http.MethodPost, target: "/api/products", as: operator, wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/products-e2e/method/products"},
		{name: "orders", method: http.MethodGet, target: "/api/orders/o-1", as: customer, wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/orders-e2e/method/orders/o-1"},
		{name: "ship", method: http.MethodPost, target: "/api/orders/o-1/ship", as: operator, wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/orders-e2e/method/orders/o-1/ship"},
		{name: "payments", method: http.MethodGet, target: "/api/payments/pay-1", as: customer, wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/payments-e2e/method/payments/pay-1"},
		{name: "notifications", method: http.MethodGet, target: "/api/notifications?user_id=u-1", as: customer, wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/notifications-e2e/method/notifications"},
		{name: "dead letters", method: http.MethodGet, target: "/api/notifications/dead-letters", as: operator, wantStatus: http.StatusOK, wantPath: "/v1.0/invoke/notifications-e2e/method/notifications/dead-letters"},
		{name: "status", method: http.MethodGet, target: "/api/status", as: operator, wantStatus: http.StatusOK},
		{name: "no token", method: http.MethodGet, target: "/api/products", wantStatus: http.StatusUnauthorized},
		{name: "customer ships", method: http.MethodPost, target: "/api/orders/o-1/ship", as: customer, wantStatus: http.StatusForbidden},
		// Issue 11: products' reservations were forwarded; nothing off the
		// table is, whoever asks.
		{name: "reserve stock", method: http.MethodPost, target: "/api/products/p-1/reservations", as: operator, wantStatus: http.StatusNotFound},
		{name: "release stock", method: http.MethodDelete, target: "/api/products/p-1/reservations/o-1", as: operator, wantStatus: http.StatusNotFound},
		{name: "an internal route", method: http.MethodGet, target: "/api/internal/users/u-1", as: operator, wantStatus: http.StatusNotFound},
		{name: "an event route", method: http.MethodPost, target: "/api/events/orders", as: operator, wantStatus: http.StatusNotFound},
		{name: "another verb on a listed path", method: http.MethodDelete, target: "/api/products/p-1", as: operator, wantStatus: http.StatusMethodNotAllowed},
		{name: "unknown service", method: http.MethodGet, target: "/api/admin/users", as: operator, wantStatus: http.StatusNotFound},
		{name: "a service name prefix is not the service", method: http.MethodGet, target: "/api/usersx", as: operator, wantStatus: http.StatusNotFound},
		{name: "below a listed route", method: http.MethodGet, target: "/api/orders/o-1/secrets", as: operator, wantStatus: http.StatusNotFound},
		{name: "outside the api", method: http.MethodGet, target: "/users/1", as: operator, wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc.mu.Lock()
			sc.seen = nil
			sc.mu.Unlock()
			var header http.Header
			if tt.as != (identity.Caller{}) {
				header = idp.bearer(t, tt.as)
			}

			w := serve(t, h, tt.method, tt.target, "", header)

			assert.Equal(t, tt.wantStatus, w.Code, w.Body.String())
			if tt.wantPath == "" {
				if tt.wantStatus != http.StatusOK {
					requireErrorBody(t, w)
				}
				sc.mu.Lock()
				assert.Empty(t, sc.seen, "nothing is forwarded")
				sc.mu.Unlock()
				return
			}
			got := sc.only(t)
			assert.Equal(t, tt.wantPath, got.Path)
			assert.Empty(t, got.Header.Get("Authorization"), "the token stays at the edge")
			if tt.as != (identity.Caller{}) {
				assert.Equal(t, []string{tt.as.String()}, got.Header.Values(identity.Header), "the caller is carried inward")
			} else {
				assert.Empty(t, got.Header.Values(identity.Header))
			}
		})
	}
}

// A client cannot pass itself off as anybody: its copies of the identity
// header are dropped, and only the verified caller is sent on.
func TestRoutesDropAClientsIdentityHeader(t *testing.T) {
	sc := newFakeSidecar(t, answer(http.StatusOK, `{}`))
	idp := newTestIdP(t)
	h := testRoutes(newTestGateway(t, sc.URL), idp, defaultPeers)
	forged := []string{"operator:root", "customer:u-victim"}
	for _, name := range []string{identity.Header, strings.ToLower(identity.Header), "X-ORDERMESH-CALLER"} {
		t.Run(name, func(t *testing.T) {
			sc.mu.Lock()
			sc.seen = nil
			sc.mu.Unlock()
			header := idp.bearer(t, ada)
			header[name] = forged
			serve(t, h, http.MethodGet, "/api/orders/o-1", "", header)
			assert.Equal(t, []string{ada.String()}, sc.only(t).Header.Values(identity.Header))

			sc.mu.Lock()
			sc.seen = nil
			sc.mu.Unlock()
			serve(t, h, http.MethodPost, "/api/users", `{}`, http.Header{name: forged})
			assert.Empty(t, sc.only(t).Header.Values(identity.Header), "an open route carries no identity")
		})
	}
}

// The gateway's route table is the README's public table, row for row, with
// the same "who" column.
func TestPublicAPIIsTheREADMETable(t *testing.T) {
	rows := readmePublicTable(t)
	var got []string
	for _, rt := range PublicAPI {
		got = append(got, rt.Method+" "+rt.Path+" | "+rt.Who.String())
	}
	assert.Equal(t, rows, got)
}

// readmePublicTable reads the README's public table as "METHOD path | who".
func readmePublicTable(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var rows []string
	inTable := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "| call | who |"):
			inTable = true
		case inTable && strings.HasPrefix(line, "| --- "):
		case inTable && strings.HasPrefix(line, "| `"):
			cells := strings.Split(line, "|")
			require.GreaterOrEqual(t, len(cells), 4, line)
			// The call is the cell's first `code span`: "METHOD /path?query".
			call := strings.Fields(strings.SplitN(strings.TrimSpace(cells[1]), "`", 3)[1])
			require.Len(t, call, 2, line)
			route := call[0] + " " + strings.SplitN(call[1], "?", 2)[0]
			rows = append(rows, route+" | "+strings.TrimSpace(cells[2]))
		case inTable:
			inTable = line == ""
			if len(rows) > 0 {
				return rows
			}
		}
	}
	require.NotEmpty(t, rows, "README.md has a table starting with \"| call | who |\"")
	return rows
}

// The gateway is where a request gets its id; the service it calls must log
// under the same one (server.RequestIDHeader: "the gateway sets it and every
// app passes it on").
func TestRoutesPassTheRequestIDOn(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
	}{
		{name: "client sent an id", incoming: "client-req-1"},
		{name: "gateway made the id", incoming: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newFakeSidecar(t, answer(http.StatusOK, `{}`))
			idp := newTestIdP(t)
			h := testRoutes(newTestGateway(t, sc.URL), idp, defaultPeers)
			header := idp.bearer(t, identity.Caller{Role: identity.Customer, Subject: "1"})
			if tt.incoming != "" {
				header.Set(server.RequestIDHeader, tt.incoming)
			}

			w := serve(t, h, http.MethodGet, "/api/users/1", "", header)

			id := w.Header().Get(server.RequestIDHeader)
			require.NotEmpty(t, id)
			forwarded := sc.only(t).Header.Get(server.RequestIDHeader)
			assert.Equal(t, id, forwarded)
		})
	}
}

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

func TestForwardNeverLetsAClientSteerTheSidecar(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
	}{
		{"dapr-app-id", http.Header{"Dapr-App-Id": {"payments"}}},
		{"dapr-app-id naming an outside URL", http.Header{"Dapr-App-Id": {"http://169.254.169.254"}}},
		{"basic auth form of dapr-app-id", http.Header{"Authorization": {"Basic ZGFwci1hcHAtaWQ6cGF5bWVudHM="}}},
		{"a guessed api token", http.Header{"Dapr-Api-Token": {"guess"}}},
		{"a caller id", http.Header{"Dapr-Caller-App-Id": {"orders"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newFakeSidecar(t, answer(http.StatusOK, `{}`))
			gw := newTestGateway(t, sc.URL)
			serve(t, gw.Forward("users", 0), http.MethodGet, "/api/users/1", "", tt.header)
			got := sc.only(t).Header
			for name := range got {
				assert.False(t, strings.HasPrefix(strings.ToLower(name), "dapr-") && name != "Dapr-Api-Token",
					"header %s reached the sidecar", name)
			}
			assert.Empty(t, got.Get("Authorization"))
			assert.NotEqual(t, "guess", got.Get("Dapr-Api-Token"))
		})
	}
}

func TestForwardRefusesDotSegments(t *testing.T) {
	sc := newFakeSidecar(t, answer(http.StatusOK, `{}`))
	gw := newTestGateway(t, sc.URL)
	w := serve(t, gw.Forward("users", 0), http.MethodGet, "/api/users/../../../v1.0/state/statestore/k", "", nil)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, api.CodeInvalidRequest, requireErrorBody(t, w).Code)
}

// The gateway's own bound on a service (GATEWAY_PAYMENTS_TIMEOUT for
// payments): an answer later than it is a 503, one within it passes.
func TestForwardTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	sc := newFakeSidecar(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") != "" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		answer(http.StatusCreated, `{"id":"pay-1"}`)(w, r)
	})
	gw := newTestGateway(t, sc.URL)
	h := gw.Forward("payments", 100*time.Millisecond)

	w := serve(t, h, http.MethodPost, "/api/payments", `{}`, nil)
	assert.Equal(t, http.StatusCreated, w.Code, "within the bound")

	w = serve(t, h, http.MethodPost, "/api/payments?slow=1", `{}`, nil)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, api.CodeDependencyUnavailable, requireErrorBody(t, w).Code)

	timeouts := Timeouts{Default: time.Second, PerService: map[string]time.Duration{"payments": 15 * time.Second}}
	assert.Equal(t, 15*time.Second, timeouts.of("payments"))
	assert.Equal(t, time.Second, timeouts.of("orders"))
}

func TestLoadTimeouts(t *testing.T) {
	def, err := LoadTimeouts(func(string) string { return "" })
	require.NoError(t, err)
	assert.Greater(t, def.of("payments"), PaymentsWorstCase, "the gateway outwaits payments' worst case")
	assert.Zero(t, def.of("orders"), "other services: the sidecar's timeouts")

	set, err := LoadTimeouts(func(k string) string { return map[string]string{"GATEWAY_PAYMENTS_TIMEOUT": "30s"}[k] })
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, set.of("payments"))

	_, err = LoadTimeouts(func(string) string { return "soon" })
	assert.Error(t, err)
}

// The gateway's sidecar must not cut a payment off before the gateway does:
// its timeout for payments is above the gateway's default.
func TestEdgeResiliencyOutwaitsPayments(t *testing.T) {
	data, err := os.ReadFile("../../dapr/resources/resiliency-edge.yaml")
	require.NoError(t, err)
	var doc struct {
		Spec struct {
			Policies struct {
				Timeouts map[string]string `yaml:"timeouts"`
			} `yaml:"policies"`
			Targets struct {
				Apps map[string]struct {
					Timeout string `yaml:"timeout"`
				} `yaml:"apps"`
			} `yaml:"targets"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(data, &doc))
	policy := doc.Spec.Targets.Apps["payments"].Timeout
	sidecar, err := time.ParseDuration(doc.Spec.Policies.Timeouts[policy])
	require.NoError(t, err, "payments' timeout policy %q", policy)
	def, err := LoadTimeouts(func(string) string { return "" })
	require.NoError(t, err)
	assert.Greater(t, sidecar, def.of("payments"))
}
