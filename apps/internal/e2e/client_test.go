//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256},
}

// response is an HTTP answer with its body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r response) JSON(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "body: %s", r.Body)
}

// ErrorCode returns the code of a JSON error body ("" if it is none).
func (r response) ErrorCode() string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &e) != nil {
		return ""
	}
	return e.Error.Code
}

// do sends a request; body may be nil, a string (sent as is) or a value
// (sent as JSON). A call of the gateway's public API carries the bearer
// token of the caller that may make it (see callerFor), unless headers name
// an Authorization of their own ("" sends none).
func do(t *testing.T, method, url string, body any, headers ...string) response {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case nil:
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		var err error
		data, err = json.Marshal(b)
		require.NoError(t, err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c, ok := callerFor(method, req.URL, data); ok {
		req.Header.Set("Authorization", "Bearer "+harness.Token(t, c))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Authorization" && headers[i+1] == "" {
			req.Header.Del("Authorization")
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := httpClient.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	r := response{Status: res.StatusCode, Header: res.Header, Body: out}
	owners.remember(method, req.URL.Path, data, r)
	return r
}

// The callers the tests act as.
var (
	operatorCaller = identity.Caller{Role: identity.Operator, Subject: "e2e-operator"}
	// nobody is a customer no test created: for calls about resources no
	// test made (an unknown order), which any customer may ask about.
	nobody = identity.Caller{Role: identity.Customer, Subject: "e2e-nobody"}
)

// customer is the caller of user id.
func customer(id string) identity.Caller {
	return identity.Caller{Role: identity.Customer, Subject: id}
}

// callerFor is who makes a call of the public API in the tests written
// before authentication: the operator for what operators do (and what
// nobody may, so those tests still see the gateway's 404 or 405), the
// customer the call is about for the rest. ok is false for signing up and
// for anything not under /api/ (sidecars, the apps themselves).
func callerFor(method string, u *url.URL, body []byte) (identity.Caller, bool) {
	segs := strings.Split(strings.TrimPrefix(u.Path, "/api/"), "/")
	if !strings.HasPrefix(u.Path, "/api/") {
		return identity.Caller{}, false
	}
	var in struct {
		UserID  string `json:"user_id"`
		OrderID string `json:"order_id"`
	}
	_ = json.Unmarshal(body, &in)
	whose := func(c identity.Caller, ok bool) (identity.Caller, bool) {
		if !ok || !c.Valid() {
			return nobody, true
		}
		return c, true
	}
	switch {
	case method == http.MethodPost && u.Path == "/api/users":
		return identity.Caller{}, false
	case method == http.MethodGet && len(segs) == 2 && segs[0] == "users":
		return whose(customer(segs[1]), true)
	case method == http.MethodPost && u.Path == "/api/orders":
		return whose(customer(in.UserID), true)
	case method == http.MethodPost && u.Path == "/api/payments":
		c, ok := owners.ofOrder(in.OrderID)
		return whose(c, ok)
	case method == http.MethodGet && len(segs) == 2 && segs[0] == "payments":
		c, ok := owners.ofPayment(segs[1])
		return whose(c, ok)
	case method == http.MethodGet && u.Path == "/api/notifications":
		return whose(customer(u.Query().Get("user_id")), true)
	}
	return operatorCaller, true
}

// owners remembers whose the orders and payments made through do are, so
// that later calls about them carry their owner's token.
var owners = &ownerBook{orders: map[string]identity.Caller{}, payments: map[string]identity.Caller{}}

type ownerBook struct {
	mu               sync.Mutex
	orders, payments map[string]identity.Caller
}

func (b *ownerBook) ofOrder(id string) (identity.Caller, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.orders[id]
	return c, ok
}

func (b *ownerBook) ofPayment(id string) (identity.Caller, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.payments[id]
	return c, ok
}

func (b *ownerBook) remember(method, path string, body []byte, r response) {
	if method != http.MethodPost || r.Status/100 != 2 {
		return
	}
	var out struct {
		ID      string `json:"id"`
		UserID  string `json:"user_id"`
		OrderID string `json:"order_id"`
	}
	if json.Unmarshal(r.Body, &out) != nil || out.ID == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch path {
	case "/api/orders":
		b.orders[out.ID] = customer(out.UserID)
	case "/api/payments":
		if c, ok := b.orders[out.OrderID]; ok {
			b.payments[out.ID] = c
		}
	}
}

// The resources of the public API, as the tests read them.
type user struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	Cached    bool      `json:"cached"`
}

type product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

type order struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	ProductID  string    `json:"product_id"`
	Quantity   int64     `json:"quantity"`
	TotalCents int64     `json:"total_cents"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
}

func uniqueEmail() string { return "u-" + uuid.NewString()[:13] + "@example.com" }

func createUser(t *testing.T, gw string) user {
	t.Helper()
	res := do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "Ada Lovelace", "email": uniqueEmail()})
	require.Equal(t, http.StatusCreated, res.Status, "create user: %s", res.Body)
	var u user
	res.JSON(t, &u)
	return u
}

func createProduct(t *testing.T, gw string, price, stock int64) product {
	t.Helper()
	res := do(t, http.MethodPost, gw+"/api/products", map[string]any{"name": "Lamp " + uuid.NewString()[:8], "price_cents": price, "stock": stock})
	require.Equal(t, http.StatusCreated, res.Status, "create product: %s", res.Body)
	var p product
	res.JSON(t, &p)
	return p
}

func getProduct(t *testing.T, gw, id string) product {
	t.Helper()
	res := do(t, http.MethodGet, gw+"/api/products/"+id, nil)
	require.Equal(t, http.StatusOK, res.Status, "get product: %s", res.Body)
	var p product
	res.JSON(t, &p)
	return p
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(within)
	var why string
	for time.Now().Before(end) {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s: %s", within, why)
}

func jsonf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
