package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// directorySnapshot is what a fakeDirectory holds.
type directorySnapshot struct {
	emails map[string]fakeClaim
	users  map[string]User
}

func (d *fakeDirectory) snapshot() directorySnapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return directorySnapshot{emails: maps.Clone(d.emails), users: maps.Clone(d.users)}
}

// FuzzRegisterHandler posts any body to POST /users over a directory that
// already holds taken@example.com. Whatever the body, the answer is 201, 400
// or 409 with a JSON body, never a 5xx (the directory does not fail), a 400
// stores nothing, and a 201 stores exactly the user it answers.
func FuzzRegisterHandler(f *testing.F) {
	for _, body := range []string{
		`{"name":"Ada","email":"ada@example.com"}`,
		`{"name":" Ada ","email":" Ada@Example.COM "}`,
		`{"name":"Other","email":"taken@example.com"}`,
		`{"name":"Other","email":"TAKEN@example.com"}`,
		`{"name":"Ada"}`,
		`{"email":"ada@example.com"}`,
		`{"name":"","email":"ada@example.com"}`,
		`{"name":"   ","email":"ada@example.com"}`,
		`{"name":"Ada","email":""}`,
		`{"name":"Ada","email":"ada"}`,
		`{"name":"Ada","email":"ada@example"}`,
		`{"name":"Ada","email":"Ada <ada@example.com>"}`,
		`{"name":"Ada","email":"\"a b\"@example.com"}`,
		`{"name":"Ada","email":"ada@[127.0.0.1]"}`,
		`{"name":"Ada","email":"a@b.c||d"}`,
		`{"name":"` + strings.Repeat("n", 201) + `","email":"ada@example.com"}`,
		`{"name":"` + strings.Repeat("é", 200) + `","email":"ada@example.com"}`,
		`{"name":"Ada","email":"` + strings.Repeat("a", 243) + `@example.com"}`,
		`{"name":1,"email":"ada@example.com"}`,
		`{"name":"Ada","email":["ada@example.com"]}`,
		`{"name":"Ada","email":"ada@example.com","admin":true}`,
		`{"name":"Ada","email":"ada@example.com"}{}`,
		`[{"name":"Ada","email":"ada@example.com"}]`,
		`null`,
		`{}`,
		``,
		`{"name":"Ada",`,
		`name=Ada`,
		"{\"name\":\"\xff\",\"email\":\"ada@example.com\"}",
		"{\"name\":\"Ada\\u0000\",\"email\":\"ada@example.com\"}",
		"{\"name\":\"Ada\",\"email\":\"ad\\u0000a@example.com\"}",
		`{"name":"Ada","email":"ada@example.com` + strings.Repeat(" ", api.MaxBodyBytes) + `"}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		srv, dir := newFuzzServer(t)
		before := dir.snapshot()

		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/users", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)

		require.Contains(t, []int{http.StatusCreated, http.StatusBadRequest, http.StatusConflict}, w.Code, w.Body.String())
		require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		require.True(t, json.Valid(w.Body.Bytes()), "the body is JSON: %q", w.Body.String())
		after := dir.snapshot()
		switch w.Code {
		case http.StatusCreated:
			var u User
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &u))
			assert.Equal(t, "/users/"+u.ID, w.Header().Get("Location"))
			assert.Len(t, after.users, len(before.users)+1)
			assert.Equal(t, u, after.users[u.ID], "the stored user is the one answered")
			assert.Equal(t, u.ID, after.emails[u.Email].claim.UserID, "the email is claimed by the user")
			assert.NotEmpty(t, strings.TrimSpace(u.Name))
			assert.Equal(t, strings.ToLower(u.Email), u.Email)
		default:
			var e api.ErrorBody
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
			assert.NotEmpty(t, e.Error.Code)
			assert.Empty(t, w.Header().Get("Location"))
			assert.Equal(t, before, after, "a refused registration stores nothing")
		}
	})
}

// newFuzzServer serves the users routes over a fake directory in which
// taken@example.com is registered.
func newFuzzServer(t *testing.T) (http.Handler, *fakeDirectory) {
	t.Helper()
	reg, dir := newTestRegistry(t)
	_, err := reg.Register(t.Context(), Registration{Name: "Taken", Email: "taken@example.com"})
	require.NoError(t, err)
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return routes(slog.New(slog.DiscardHandler), reg, ready), dir
}
