//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// client is the one way the soak talks to the public API: each request
// carries the bearer token of the caller the gateway expects for it (callerOf).
type client struct {
	t    testing.TB
	base string
	http *http.Client

	mu     sync.Mutex
	tokens map[identity.Caller]string // signed once per caller
	owners map[string]string          // order id -> the customer who placed it
}

func newClient(t testing.TB, base string) *client {
	return &client{t: t, base: base, http: &http.Client{
		// Longer than any timeout of the system (the gateway's and the
		// sidecars'): no answer within it is an ambiguous outcome.
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}, tokens: map[identity.Caller]string{}, owners: map[string]string{}}
}

var operator = identity.Caller{Role: identity.Operator, Subject: "chaos"}

// callerOf is who the soak acts as: the customer whose user, order,
// payment or notifications a request is about, else the operator
// (catalogue, shipping, orders' reads, dead letters).
func (c *client) callerOf(method, path string, body any) identity.Caller {
	customer := func(id string) identity.Caller { return identity.Caller{Role: identity.Customer, Subject: id} }
	if m, ok := body.(map[string]any); ok {
		if id, ok := m["user_id"].(string); ok {
			return customer(id)
		}
		if id, ok := m["order_id"].(string); ok {
			c.mu.Lock()
			owner := c.owners[id]
			c.mu.Unlock()
			return customer(owner)
		}
	}
	u, err := url.Parse(path)
	if err != nil {
		return operator
	}
	switch {
	case strings.HasPrefix(u.Path, "/api/users/"):
		return customer(strings.TrimPrefix(u.Path, "/api/users/"))
	case u.Path == "/api/notifications":
		return customer(u.Query().Get("user_id"))
	}
	return operator
}

func (c *client) token(who identity.Caller) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok, ok := c.tokens[who]
	if !ok {
		tok = harness.Token(c.t, who)
		c.tokens[who] = tok
	}
	return tok
}

// answer is an HTTP answer, or none (Status 0, Err set): a timeout or a
// refused connection, an outcome the client cannot know.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error
}

// do sends one request; body is JSON-encoded when not nil.
func (c *client) do(ctx context.Context, method, path string, body any, headers ...string) answer {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return answer{Err: err}
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token(c.callerOf(method, path, body)))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return answer{Status: res.StatusCode, Header: res.Header, Err: err}
	}
	if method == http.MethodPost && path == "/api/orders" && res.StatusCode == http.StatusCreated {
		var o struct {
			ID     string `json:"id"`
			UserID string `json:"user_id"`
		}
		if json.Unmarshal(data, &o) == nil {
			c.mu.Lock()
			c.owners[o.ID] = o.UserID
			c.mu.Unlock()
		}
	}
	return answer{Status: res.StatusCode, Header: res.Header, Body: data}
}

// decode reads a JSON body into v.
func (a answer) decode(v any) error { return json.Unmarshal(a.Body, v) }

// ambiguous reports whether the request may or may not have taken effect:
// no answer, or a server-side failure that may have come after the write.
func (a answer) ambiguous() bool { return a.Status == 0 || a.Status >= 500 }

// label is the answer as the report counts it: its status, or "none".
func (a answer) label() string {
	if a.Status == 0 {
		return "none"
	}
	return strconv.Itoa(a.Status)
}
