//go:build k8s

package k8stest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// gatewayClient is every call the tests make to the gateway, in one place:
// each request carries the bearer token of the caller the gateway expects
// for it (callerOf), signed by the development key the gateway's ConfigMap
// holds (cluster/deploy.sh), through bin/devtoken as a user would.
type gatewayClient struct {
	base string
	http *http.Client

	mu     sync.Mutex
	tokens map[string]string // "customer <id>" or "operator" -> token
	owners map[string]string // order id -> the customer who placed it
}

func newGatewayClient(base string) *gatewayClient {
	return &gatewayClient{
		base: strings.TrimRight(base, "/"),
		http: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
				MaxIdleConnsPerHost: 128,
				IdleConnTimeout:     30 * time.Second,
			},
		},
		tokens: map[string]string{},
		owners: map[string]string{},
	}
}

// callerOf is who a request acts as, in devtoken's words: the customer
// whose user, order payment or notifications it is about, else the operator
// (catalogue, shipping, orders' reads, status).
func (c *gatewayClient) callerOf(path string, body any) []string {
	if m, ok := body.(map[string]any); ok {
		if id, ok := m["user_id"].(string); ok {
			return []string{"customer", id}
		}
		if id, ok := m["order_id"].(string); ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return []string{"customer", c.owners[id]}
		}
	}
	if u, err := url.Parse(path); err == nil {
		switch {
		case strings.HasPrefix(u.Path, "/api/users/"):
			return []string{"customer", strings.TrimPrefix(u.Path, "/api/users/")}
		case u.Path == "/api/notifications":
			return []string{"customer", u.Query().Get("user_id")}
		}
	}
	return []string{"operator"}
}

var devtoken = sync.OnceValues(func() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	bin := filepath.Join(root, ".run", "k8s", "devtoken")
	out, err := exec.Command("go", "build", "-C", root, "-o", bin, "./apps/internal/devtoken").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build devtoken: %v: %s", err, out)
	}
	return bin, nil
})

// authorize adds the bearer token of who.
func (c *gatewayClient) authorize(req *http.Request, who []string) error {
	key := strings.Join(who, " ")
	c.mu.Lock()
	tok, ok := c.tokens[key]
	c.mu.Unlock()
	if !ok {
		bin, err := devtoken()
		if err != nil {
			return err
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command(bin, who...)
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..", "..")
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("devtoken %s: %w", key, err)
		}
		tok = strings.TrimSpace(string(out))
		c.mu.Lock()
		c.tokens[key] = tok
		c.mu.Unlock()
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// response is an HTTP answer with its body read; Err is set when there was
// no answer (a transport error or a timeout).
type response struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error
}

// JSON decodes the body into v.
func (r response) JSON(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, r.Err)
	require.NoError(t, json.Unmarshal(r.Body, v), "body: %s", r.Body)
}

// ErrorCode is the code of a JSON error body ("" if it is none).
func (r response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &e) != nil {
		return ""
	}
	return e.Error.Code
}

// String is the answer for a failure message.
func (r response) String() string {
	if r.Err != nil {
		return "no answer: " + r.Err.Error()
	}
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// call sends one request (body nil, or a value sent as JSON; headers as
// name, value pairs) and never fails the test: the answer says what happened.
func (c *gatewayClient) call(ctx context.Context, method, path string, body any, headers ...string) response {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return response{Err: err}
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return response{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if err := c.authorize(req, c.callerOf(path, body)); err != nil {
		return response{Err: err}
	}
	res, err := c.http.Do(req)
	if err != nil {
		return response{Err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
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
	return response{Status: res.StatusCode, Header: res.Header, Body: data, Err: err}
}

// do is call for test steps that need an answer.
func (c *gatewayClient) do(t *testing.T, method, path string, body any, headers ...string) response {
	t.Helper()
	r := c.call(context.Background(), method, path, body, headers...)
	require.NoError(t, r.Err, "%s %s", method, path)
	return r
}

// The resources of the public API, as the tests read them.
type user struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Cached bool   `json:"cached"`
}

type product struct {
	ID         string `json:"id"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

type order struct {
	ID         string `json:"id"`
	UserID     string `json:"user_id"`
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	TotalCents int64  `json:"total_cents"`
	Status     string `json:"status"`
	PaymentID  string `json:"payment_id"`
}

type payment struct {
	ID      string `json:"id"`
	OrderID string `json:"order_id"`
}

type notification struct {
	UserID  string `json:"user_id"`
	OrderID string `json:"order_id"`
	Type    string `json:"type"`
}

func (c *gatewayClient) createUser(t *testing.T) user {
	t.Helper()
	r := c.do(t, http.MethodPost, "/api/users", map[string]any{"name": "Ada Lovelace", "email": "k8s-" + uuid.NewString()[:13] + "@example.com"})
	require.Equal(t, http.StatusCreated, r.Status, "create user: %s", r)
	var u user
	r.JSON(t, &u)
	return u
}

func (c *gatewayClient) createProduct(t *testing.T, price, stock int64) product {
	t.Helper()
	r := c.do(t, http.MethodPost, "/api/products", map[string]any{"name": "Widget", "price_cents": price, "stock": stock})
	require.Equal(t, http.StatusCreated, r.Status, "create product: %s", r)
	var p product
	r.JSON(t, &p)
	return p
}

func (c *gatewayClient) placeOrder(t *testing.T, userID, productID string, qty int64) order {
	t.Helper()
	r := c.do(t, http.MethodPost, "/api/orders", map[string]any{"user_id": userID, "product_id": productID, "quantity": qty})
	require.Equal(t, http.StatusCreated, r.Status, "place order: %s", r)
	var o order
	r.JSON(t, &o)
	return o
}

func (c *gatewayClient) notifications(t *testing.T, userID string) []notification {
	t.Helper()
	var all []notification
	path := "/api/notifications?limit=100&user_id=" + url.QueryEscape(userID)
	for range 10000 { // pages of 100: far more than any test makes
		r := c.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		var page []notification
		r.JSON(t, &page)
		all = append(all, page...)
		next := r.Header.Get("Next-Cursor")
		if next == "" {
			return all
		}
		path = "/api/notifications?limit=100&user_id=" + url.QueryEscape(userID) + "&cursor=" + url.QueryEscape(next)
	}
	t.Fatalf("notifications of %s: more pages than the test could make", userID)
	return nil
}

// eventually polls cond every 200 ms until it holds, and fails the test with
// cond's last explanation when it has not within the deadline.
func eventually(t *testing.T, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(within)
	var why string
	for {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("condition not met within %s: %s", within, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
