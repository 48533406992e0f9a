//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
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
// (sent as JSON).
func do(t *testing.T, method, url string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := httpClient.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{Status: res.StatusCode, Header: res.Header, Body: data}
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
