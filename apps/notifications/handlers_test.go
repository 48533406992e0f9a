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
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
	"github.com/ordermesh/ordermesh/apps/internal/events"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// newTestHandler serves the notifications routes over a fake inbox.
func newTestHandler(t *testing.T) (http.Handler, *fakeInbox) {
	t.Helper()
	n, inbox := newTestNotifier(t)
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return routes(slog.New(slog.DiscardHandler), n, ready), inbox
}

// serve sends a request through h and returns the recorded response.
func serve(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/cloudevents+json")
	r.Header.Set(identity.Header, testCaller(target))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// outcomeOf decodes the {"status": ...} answer to an event delivery.
func outcomeOf(t *testing.T, w *httptest.ResponseRecorder) events.Outcome {
	t.Helper()
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	require.Len(t, body, 1, "the answer holds only the status: %s", w.Body.String())
	return events.Outcome(body["status"])
}

// errorCode decodes a JSON error body and returns its code.
func errorCode(t *testing.T, w *httptest.ResponseRecorder) api.Code {
	t.Helper()
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body map[string]map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	require.Contains(t, body, "error")
	require.Len(t, body["error"], 2, "error holds exactly code and message: %s", w.Body.String())
	require.NotEmpty(t, body["error"]["message"])
	return api.Code(body["error"]["code"])
}

// deliveredEvent is the body Dapr posts for an order event; data is any JSON.
func deliveredEvent(id, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":"com.dapr.event.sent","source":"orders","topic":"orders","pubsubname":"orderpubsub","datacontenttype":"application/json","traceparent":"00-abc-def-01","data":%s}`, id, data)
}

func TestOrderEventHandler(t *testing.T) {
	created := `{"type":"order_created","order_id":"o-1","user_id":"u-1"}`
	tests := []struct {
		name        string
		bodies      []string // delivered one after the other
		addErr      error
		wantStatus  int
		wantOutcome events.Outcome // of the last delivery
		wantNotes   []string
	}{
		{name: "order_created", bodies: []string{deliveredEvent("ev-1", created)}, wantStatus: http.StatusOK, wantOutcome: events.Success, wantNotes: []string{"email"}},
		{name: "order_shipped", bodies: []string{deliveredEvent("ev-1", `{"type":"order_shipped","order_id":"o-1","user_id":"u-1"}`)}, wantStatus: http.StatusOK, wantOutcome: events.Success, wantNotes: []string{"sms"}},
		{name: "data as a JSON string", bodies: []string{deliveredEvent("ev-1", fmt.Sprintf("%q", created))}, wantStatus: http.StatusOK, wantOutcome: events.Success, wantNotes: []string{"email"}},
		{name: "same CloudEvent id twice", bodies: []string{deliveredEvent("ev-1", created), deliveredEvent("ev-1", created)}, wantStatus: http.StatusOK, wantOutcome: events.Success, wantNotes: []string{"email"}},
		{name: "unknown type", bodies: []string{deliveredEvent("ev-1", `{"type":"order_lost","order_id":"o-1","user_id":"u-1"}`)}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "missing user_id", bodies: []string{deliveredEvent("ev-1", `{"type":"order_created","order_id":"o-1"}`)}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "invalid user_id", bodies: []string{deliveredEvent("ev-1", `{"type":"order_created","order_id":"o-1","user_id":"../u-1"}`)}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "missing order_id", bodies: []string{deliveredEvent("ev-1", `{"type":"order_created","user_id":"u-1"}`)}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "invalid order_id", bodies: []string{deliveredEvent("ev-1", `{"type":"order_created","order_id":"o 1","user_id":"u-1"}`)}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "no CloudEvent id", bodies: []string{deliveredEvent("", created)}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "undecodable body", bodies: []string{`{"id":"ev-1","data":`}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "body is not an object", bodies: []string{`["ev-1"]`}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "empty body", bodies: []string{``}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "id of the wrong type", bodies: []string{`{"id":1,"data":` + created + `}`}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "body over the limit", bodies: []string{deliveredEvent("ev-1", `{"type":"order_created","order_id":"o-1","user_id":"u-1","pad":"`+strings.Repeat("x", api.MaxBodyBytes)+`"}`)}, wantStatus: http.StatusOK, wantOutcome: events.Drop},
		{name: "inbox failure", bodies: []string{deliveredEvent("ev-1", created)}, addErr: fmt.Errorf("%w: connection refused", api.ErrUnavailable), wantStatus: http.StatusInternalServerError, wantOutcome: events.Retry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, inbox := newTestHandler(t)
			inbox.addErr = tt.addErr

			var w *httptest.ResponseRecorder
			for _, body := range tt.bodies {
				w = serve(t, h, http.MethodPost, "/events/orders", body)
			}

			assert.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, tt.wantOutcome, outcomeOf(t, w))
			var channels []string
			for _, n := range inbox.stored() {
				channels = append(channels, n.Channel)
			}
			assert.Equal(t, tt.wantNotes, channels)
		})
	}
}

func TestDeadLetterHandler(t *testing.T) {
	tests := []struct {
		name        string
		bodies      []string
		addDeadErr  error
		wantStatus  int
		wantOutcome events.Outcome
		wantIDs     []string // "" for an id derived from the body
		wantReason  string   // a substring of the first dead letter's reason
	}{
		{
			name:        "unknown event type",
			bodies:      []string{deliveredEvent("ev-1", `{"type":"order_lost","order_id":"o-1","user_id":"u-1"}`)},
			wantStatus:  http.StatusOK,
			wantOutcome: events.Success,
			wantIDs:     []string{"ev-1"},
			wantReason:  `unknown event type "order_lost"`,
		},
		{
			name:        "same event id twice",
			bodies:      []string{deliveredEvent("ev-1", `{"type":"order_lost"}`), deliveredEvent("ev-1", `{"type":"order_lost"}`)},
			wantStatus:  http.StatusOK,
			wantOutcome: events.Success,
			wantIDs:     []string{"ev-1"},
			wantReason:  `unknown event type "order_lost"`,
		},
		{
			name:        "two events",
			bodies:      []string{deliveredEvent("ev-1", `{"type":"order_lost"}`), deliveredEvent("ev-2", `{"type":"order_created","order_id":"o-1","user_id":"u-1"}`)},
			wantStatus:  http.StatusOK,
			wantOutcome: events.Success,
			wantIDs:     []string{"ev-1", "ev-2"},
			wantReason:  `unknown event type "order_lost"`,
		},
		{
			name:        "undecodable body is kept as it is",
			bodies:      []string{`{"id":"ev-1",`},
			wantStatus:  http.StatusOK,
			wantOutcome: events.Success,
			wantIDs:     []string{""},
			wantReason:  "the CloudEvent has no id",
		},
		{
			name:        "inbox failure",
			bodies:      []string{deliveredEvent("ev-1", `{"type":"order_lost"}`)},
			addDeadErr:  fmt.Errorf("%w: connection refused", api.ErrUnavailable),
			wantStatus:  http.StatusInternalServerError,
			wantOutcome: events.Retry,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, inbox := newTestHandler(t)
			inbox.addDeadErr = tt.addDeadErr

			var w *httptest.ResponseRecorder
			for _, body := range tt.bodies {
				w = serve(t, h, http.MethodPost, "/events/dead-letters", body)
			}

			assert.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, tt.wantOutcome, outcomeOf(t, w))
			stored := inbox.storedDeadLetters()
			require.Len(t, stored, len(tt.wantIDs))
			for i, id := range tt.wantIDs {
				if id == "" {
					assert.True(t, strings.HasPrefix(stored[i].EventID, "unidentified-"), stored[i].EventID)
					continue
				}
				assert.Equal(t, id, stored[i].EventID)
			}
			if len(stored) > 0 {
				assert.Contains(t, stored[0].Reason, tt.wantReason)
				assert.True(t, json.Valid(stored[0].Event), "the event is kept as JSON: %s", stored[0].Event)
			}
		})
	}
}

func TestListHandler(t *testing.T) {
	h, inbox := newTestHandler(t)
	for _, body := range []string{
		deliveredEvent("ev-1", `{"type":"order_created","order_id":"o-1","user_id":"u-1"}`),
		deliveredEvent("ev-2", `{"type":"order_shipped","order_id":"o-1","user_id":"u-1"}`),
		deliveredEvent("ev-3", `{"type":"order_created","order_id":"o-2","user_id":"u-2"}`),
	} {
		w := serve(t, h, http.MethodPost, "/events/orders", body)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	}
	require.Len(t, inbox.stored(), 3)

	tests := []struct {
		name       string
		target     string
		listErr    error
		wantStatus int
		wantCode   api.Code // for error answers
		wantBody   string   // JSON, for lists
	}{
		{
			name:       "a user's notifications",
			target:     "/notifications?user_id=u-1",
			wantStatus: http.StatusOK,
			wantBody: `[` +
				`{"id":"` + notificationID("ev-1") + `","user_id":"u-1","order_id":"o-1","type":"order_created","channel":"email","event_id":"ev-1","created_at":"2026-11-26T09:30:00Z"},` +
				`{"id":"` + notificationID("ev-2") + `","user_id":"u-1","order_id":"o-1","type":"order_shipped","channel":"sms","event_id":"ev-2","created_at":"2026-11-26T09:30:00Z"}]`,
		},
		{name: "a user with none is an empty list, not null", target: "/notifications?user_id=u-9", wantStatus: http.StatusOK, wantBody: `[]`},
		{name: "missing user_id", target: "/notifications", wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest},
		{name: "empty user_id", target: "/notifications?user_id=", wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest},
		{name: "invalid user_id", target: "/notifications?user_id=u%2F1", wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest},
		{name: "user_id too long", target: "/notifications?user_id=" + strings.Repeat("u", 65), wantStatus: http.StatusBadRequest, wantCode: api.CodeInvalidRequest},
		{name: "inbox down", target: "/notifications?user_id=u-1", listErr: fmt.Errorf("%w: connection refused", api.ErrUnavailable), wantStatus: http.StatusServiceUnavailable, wantCode: api.CodeDependencyUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inbox.mu.Lock()
			inbox.listErr = tt.listErr
			inbox.mu.Unlock()
			t.Cleanup(func() {
				inbox.mu.Lock()
				inbox.listErr = nil
				inbox.mu.Unlock()
			})

			w := serve(t, h, http.MethodGet, tt.target, "")

			assert.Equal(t, tt.wantStatus, w.Code)
			if tt.wantCode != "" {
				assert.Equal(t, tt.wantCode, errorCode(t, w))
				assert.NotContains(t, w.Body.String(), "connection refused", "internal details stay in the log")
				return
			}
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			assert.JSONEq(t, tt.wantBody, w.Body.String())
		})
	}
}

func TestDeadLettersHandler(t *testing.T) {
	tests := []struct {
		name       string
		bodies     []string // dead letters delivered first
		listErr    error
		wantStatus int
		wantIDs    []string
	}{
		{name: "none is an empty list, not null", wantStatus: http.StatusOK, wantIDs: []string{}},
		{
			name:       "kept dead letters, oldest first",
			bodies:     []string{deliveredEvent("ev-2", `{"type":"x"}`), deliveredEvent("ev-1", `{"type":"y"}`)},
			wantStatus: http.StatusOK,
			wantIDs:    []string{"ev-2", "ev-1"},
		},
		{name: "inbox down", listErr: fmt.Errorf("%w: timeout", api.ErrUnavailable), wantStatus: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, inbox := newTestHandler(t)
			for _, body := range tt.bodies {
				require.Equal(t, http.StatusOK, serve(t, h, http.MethodPost, "/events/dead-letters", body).Code)
			}
			inbox.deadLettersErr = tt.listErr

			w := serve(t, h, http.MethodGet, "/notifications/dead-letters", "")

			assert.Equal(t, tt.wantStatus, w.Code)
			if tt.listErr != nil {
				assert.Equal(t, api.CodeDependencyUnavailable, errorCode(t, w))
				return
			}
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			var list []DeadLetter
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list), w.Body.String())
			require.NotNil(t, list, "an empty list, not null: %s", w.Body.String())
			ids := make([]string, len(list))
			for i, d := range list {
				ids[i] = d.EventID
				assert.NotEmpty(t, d.Reason)
				assert.Equal(t, "orders", d.Topic)
			}
			assert.Equal(t, tt.wantIDs, ids)
		})
	}
}

func TestRoutesRejectOtherMethods(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantCode   api.Code
	}{
		{name: "GET on the order events route", method: http.MethodGet, target: "/events/orders", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
		{name: "GET on the dead letters route", method: http.MethodGet, target: "/events/dead-letters", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
		{name: "POST on the list", method: http.MethodPost, target: "/notifications?user_id=u-1", wantStatus: http.StatusMethodNotAllowed, wantCode: api.CodeMethodNotAllowed},
		{name: "unknown route", method: http.MethodGet, target: "/notifications/u-1", wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newTestHandler(t)

			w := serve(t, h, tt.method, tt.target, "")

			assert.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, tt.wantCode, errorCode(t, w))
		})
	}
}

func TestListHandlerPages(t *testing.T) {
	h, _ := newTestHandler(t)
	for i := range 5 {
		w := serve(t, h, http.MethodPost, "/events/orders", deliveredEvent(fmt.Sprintf("ev-%d", i), `{"type":"order_created","order_id":"o-1","user_id":"u-1"}`))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	}

	var got []string
	cursor, pages := "", 0
	for {
		target := "/notifications?user_id=u-1&limit=2"
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		w := serve(t, h, http.MethodGet, target, "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var page []Notification
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
		assert.LessOrEqual(t, len(page), 2, "a page holds at most limit entries")
		for _, n := range page {
			got = append(got, n.EventID)
		}
		pages++
		cursor = w.Header().Get(NextCursorHeader)
		if cursor == "" {
			break
		}
		require.Less(t, pages, 5, "the pages end")
	}
	assert.Equal(t, []string{"ev-0", "ev-1", "ev-2", "ev-3", "ev-4"}, got, "every notification once, oldest first")
	assert.Equal(t, 3, pages)

	for _, target := range []string{
		"/notifications?user_id=u-1&limit=0",
		"/notifications?user_id=u-1&limit=101",
		"/notifications?user_id=u-1&limit=x",
		"/notifications?user_id=u-1&cursor=-1",
		"/notifications?user_id=u-1&cursor=abc",
		"/notifications/dead-letters?limit=1000",
		"/notifications/dead-letters?cursor=1e3",
	} {
		t.Run(target, func(t *testing.T) {
			w := serve(t, h, http.MethodGet, target, "")
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.Equal(t, api.CodeInvalidRequest, errorCode(t, w))
		})
	}
}

func TestAppHandlerRequiresTheAppToken(t *testing.T) {
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := appHandler("s3cret", slog.New(slog.DiscardHandler), nil, ready)
	apitest.RequireAppToken(t, h, "/notifications/x")
}
