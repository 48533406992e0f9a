package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/events"
)

// eventSeeds are bodies Dapr could deliver, good and bad.
func eventSeeds() []string {
	created := `{"type":"order_created","order_id":"o-1","user_id":"u-1"}`
	return []string{
		deliveredEvent("ev-1", created),
		deliveredEvent("ev-1", `{"type":"order_shipped","order_id":"o-1","user_id":"u-1"}`),
		deliveredEvent("ev-1", fmt.Sprintf("%q", created)),
		deliveredEvent("ev-1", `{"type":"order_paid","order_id":"o-1","user_id":"u-1"}`),
		deliveredEvent("ev-1", `{"type":"order_created","order_id":"o-1"}`),
		deliveredEvent("ev-1", `{"type":"order_created","user_id":"u-1"}`),
		deliveredEvent("ev-1", `{"type":"order_created","order_id":"o-1","user_id":"u/1"}`),
		deliveredEvent("ev-1", `{"type":"order_created","order_id":"`+strings.Repeat("o", 65)+`","user_id":"u-1"}`),
		deliveredEvent("ev-1", `{"type":"order_created","order_id":1,"user_id":"u-1"}`),
		deliveredEvent("", created),
		deliveredEvent("ev-1", `null`),
		deliveredEvent("ev-1", `"not json"`),
		deliveredEvent("ev-1", `[`+created+`]`),
		deliveredEvent("ev-1", `"\"{\\\"type\\\":\\\"order_created\\\"}\""`),
		`{"id":"ev-1","data":` + created + `}`,
		`{"id":1,"data":` + created + `}`,
		`{"id":"ev-1","data":` + created + `,"data":null}`,
		`{"id":"ev-1","data":` + strings.Repeat("[", 20000) + `}`,
		`{"id":"ev-1",`,
		`[]`,
		`null`,
		`""`,
		``,
		`not json`,
		"\xff\xfe\x00",
		"{\"id\":\"ev-\xff\",\"data\":" + created + "}",
		deliveredEvent("ev-1", `{"type":"order_created","order_id":"o-1","user_id":"u-1","pad":"`+strings.Repeat("x", api.MaxBodyBytes)+`"}`),
	}
}

// requireOutcome checks an answer to an event delivery: JSON holding only a
// valid status, with HTTP 500 for RETRY and 200 otherwise.
func requireOutcome(t *testing.T, status int, contentType string, body []byte) events.Outcome {
	t.Helper()
	require.Equal(t, "application/json", contentType)
	var answer map[string]string
	require.NoError(t, json.Unmarshal(body, &answer), "%q", body)
	require.Len(t, answer, 1, "%s", body)
	o := events.Outcome(answer["status"])
	require.Contains(t, []events.Outcome{events.Success, events.Retry, events.Drop}, o, "%s", body)
	if o == events.Retry {
		require.Equal(t, http.StatusInternalServerError, status)
	} else {
		require.Equal(t, http.StatusOK, status)
	}
	return o
}

// FuzzOrderEventHandler posts any body to POST /events/orders, with the
// inbox up or down. The answer always holds a valid status: SUCCESS or DROP
// while the inbox is up, RETRY or DROP while it is down. A dropped event
// stores nothing; a handled one stores at most one valid notification, which
// the list route then serves.
func FuzzOrderEventHandler(f *testing.F) {
	for _, body := range eventSeeds() {
		f.Add([]byte(body), false)
	}
	f.Add([]byte(deliveredEvent("ev-1", `{"type":"order_created","order_id":"o-1","user_id":"u-1"}`)), true)
	f.Add([]byte(deliveredEvent("ev-1", `{"type":"order_lost","order_id":"o-1","user_id":"u-1"}`)), true)
	f.Fuzz(func(t *testing.T, body []byte, inboxDown bool) {
		h, inbox := newTestHandler(t)
		if inboxDown {
			inbox.addErr = fmt.Errorf("%w: connection refused", api.ErrUnavailable)
		}

		w := serve(t, h, http.MethodPost, "/events/orders", string(body))

		o := requireOutcome(t, w.Code, w.Header().Get("Content-Type"), w.Body.Bytes())
		stored := inbox.stored()
		switch {
		case o == events.Drop:
			assert.Zero(t, inbox.adds, "a dropped event reaches no inbox")
		case inboxDown:
			require.Equal(t, events.Retry, o, "nothing is handled while the inbox is down")
		default:
			require.Equal(t, events.Success, o, "nothing needs a retry while the inbox is up")
		}
		require.LessOrEqual(t, len(stored), 1)
		if len(stored) == 0 {
			return
		}
		require.Equal(t, events.Success, o)
		n := stored[0]
		assert.True(t, api.ValidID(n.UserID), "user_id %q", n.UserID)
		assert.True(t, api.ValidID(n.OrderID), "order_id %q", n.OrderID)
		assert.Equal(t, channels[n.Type], n.Channel)
		assert.NotEmpty(t, n.Channel)
		assert.NotEmpty(t, n.EventID)
		assert.Equal(t, notificationID(n.EventID), n.ID)

		list := serve(t, h, http.MethodGet, "/notifications?user_id="+url.QueryEscape(n.UserID), "")
		require.Equal(t, http.StatusOK, list.Code, list.Body.String())
		var got []Notification
		require.NoError(t, json.Unmarshal(list.Body.Bytes(), &got))
		assert.Equal(t, stored, got)
	})
}

// FuzzDeadLetterHandler posts any body to POST /events/dead-letters, with
// the inbox up or down. A dead letter is never dropped: SUCCESS while the
// inbox is up (it is kept, with an id, a reason and the event as JSON), RETRY
// while it is down. The dead-letter list stays readable JSON.
func FuzzDeadLetterHandler(f *testing.F) {
	for _, body := range eventSeeds() {
		f.Add([]byte(body), false)
	}
	f.Add([]byte(deliveredEvent("ev-1", `{"type":"order_lost"}`)), true)
	f.Fuzz(func(t *testing.T, body []byte, inboxDown bool) {
		h, inbox := newTestHandler(t)
		if inboxDown {
			inbox.addDeadErr = fmt.Errorf("%w: connection refused", api.ErrUnavailable)
		}

		w := serve(t, h, http.MethodPost, "/events/dead-letters", string(body))

		o := requireOutcome(t, w.Code, w.Header().Get("Content-Type"), w.Body.Bytes())
		stored := inbox.storedDeadLetters()
		if inboxDown {
			require.Equal(t, events.Retry, o)
			require.Empty(t, stored)
			return
		}
		require.Equal(t, events.Success, o, "a dead letter is always kept")
		require.Len(t, stored, 1)
		d := stored[0]
		assert.NotEmpty(t, d.EventID)
		assert.NotEmpty(t, d.Reason)
		assert.True(t, json.Valid(d.Event), "the event is kept as JSON: %q", d.Event)
		assert.Equal(t, testNow, d.ReceivedAt)

		list := serve(t, h, http.MethodGet, "/notifications/dead-letters", "")
		require.Equal(t, http.StatusOK, list.Code)
		var got []DeadLetter
		require.NoError(t, json.Unmarshal(list.Body.Bytes(), &got), "%q", list.Body.String())
		require.Len(t, got, 1)
		assert.Equal(t, d.EventID, got[0].EventID)
	})
}
