//go:build bench

package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// gateway is the one way the bench reaches the public API: every request it
// sends itself and every target vegeta attacks carries header and the bearer
// token of the caller the gateway expects for it (callerOf).
type gateway struct {
	t      testing.TB
	base   string
	header http.Header
	client *http.Client
	mu     sync.Mutex
	tokens map[identity.Caller]string // signed once per caller
}

func newGateway(t testing.TB, sys *harness.System) *gateway {
	h := http.Header{"Content-Type": {"application/json"}}
	return &gateway{t: t, base: sys.GatewayURL(), header: h, client: &http.Client{Timeout: 10 * time.Second},
		tokens: map[identity.Caller]string{}}
}

// callerOf is who the bench acts as for a request: the customer an order
// or a notifications read is for, else the operator (products, status;
// signing up needs no token and ignores it).
func callerOf(path string, body any) identity.Caller {
	if m, ok := body.(map[string]any); ok {
		if id, ok := m["user_id"].(string); ok {
			return identity.Caller{Role: identity.Customer, Subject: id}
		}
	}
	if u, err := url.Parse(path); err == nil && strings.HasPrefix(u.Path, "/api/notifications") && u.Query().Get("user_id") != "" {
		return identity.Caller{Role: identity.Customer, Subject: u.Query().Get("user_id")}
	}
	return identity.Caller{Role: identity.Operator, Subject: "bench"}
}

func (g *gateway) token(c identity.Caller) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	tok, ok := g.tokens[c]
	if !ok {
		tok = harness.Token(g.t, c)
		g.tokens[c] = tok
	}
	return tok
}

// target is one request for vegeta.
func (g *gateway) target(method, path string, body any) vegeta.Target {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	h := g.header.Clone()
	h.Set("Authorization", "Bearer "+g.token(callerOf(path, body)))
	return vegeta.Target{Method: method, URL: g.base + path, Body: data, Header: h}
}

// do sends one request and decodes a JSON answer into out (when not nil).
func (g *gateway) do(method, path string, body, out any) (int, error) {
	code, _, err := g.exchange(method, path, body, out)
	return code, err
}

// exchange is do that also returns the answer's headers.
func (g *gateway) exchange(method, path string, body, out any) (int, http.Header, error) {
	tg := g.target(method, path, body)
	req, err := tg.Request()
	if err != nil {
		return 0, nil, err
	}
	res, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, res.Header, err
	}
	if out != nil && res.StatusCode/100 == 2 {
		err = json.NewDecoder(bytes.NewReader(data)).Decode(out)
	}
	return res.StatusCode, res.Header, err
}

// create POSTs a resource and returns its id; anything but 201 fails the bench.
func (g *gateway) create(t *testing.T, path string, body any) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	code, err := g.do(http.MethodPost, path, body, &v)
	if err != nil || code != http.StatusCreated || v.ID == "" {
		t.Fatalf("POST %s: %d %v", path, code, err)
	}
	return v.ID
}
