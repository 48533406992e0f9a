package harness

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCounter(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "app saw "+r.URL.Path)
	}))
	t.Cleanup(app.Close)
	c := NewCounter(t, strings.TrimPrefix(app.URL, "http://"))
	// A client that keeps connections alive, as a sidecar's does.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(path string) (string, error) {
		res, err := client.Get("http://" + c.Addr() + path)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return string(body), err
	}

	for range 3 {
		body, err := get("/internal/users/42")
		require.NoError(t, err)
		assert.Equal(t, "app saw /internal/users/42", body)
	}
	_, err := get("/healthz")
	require.NoError(t, err)
	assert.Equal(t, 3, c.Count("/internal/users/"))
	assert.Equal(t, 1, c.Count("/healthz"))

	// Down: each request is counted once and gets no answer, even the first
	// one, which the client would otherwise send on a kept-alive connection
	// and resend on a new one.
	c.Down()
	for i := range 5 {
		_, err := get("/internal/users/42")
		require.Error(t, err, "request %d answered while down", i+1)
		assert.Equal(t, 4+i, c.Count("/internal/users/"), "after request %d while down", i+1)
	}

	c.Up()
	body, err := get("/internal/users/42")
	require.NoError(t, err)
	assert.Equal(t, "app saw /internal/users/42", body)
	assert.Equal(t, 9, c.Count("/internal/users/42"))
	assert.Equal(t, map[string]int{"/internal/users/42": 9, "/healthz": 1}, c.Counts())

	// The app itself gone: no made-up 502, no answer at all.
	app.Close()
	_, err = get("/internal/users/42")
	assert.Error(t, err)
}
