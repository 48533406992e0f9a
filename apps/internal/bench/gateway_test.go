//go:build bench

package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// gateway is the one way the bench reaches the public API: every request it
// sends itself and every target vegeta attacks carries header. When the
// gateway asks for a bearer token, newGateway sets it, and nothing else
// changes.
type gateway struct {
	base   string
	header http.Header
	client *http.Client
}

func newGateway(sys *harness.System) *gateway {
	h := http.Header{"Content-Type": {"application/json"}}
	// h.Set("Authorization", "Bearer "+token) // when the gateway wants a JWT
	return &gateway{base: sys.GatewayURL(), header: h, client: &http.Client{Timeout: 10 * time.Second}}
}

// target is one request for vegeta.
func (g *gateway) target(method, path string, body any) vegeta.Target {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	return vegeta.Target{Method: method, URL: g.base + path, Body: data, Header: g.header.Clone()}
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
