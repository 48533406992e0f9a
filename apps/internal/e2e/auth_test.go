//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
	"github.com/ordermesh/ordermesh/apps/internal/identity/devkey"
)

// publicRow is one row of the README's public table.
type publicRow struct {
	Route string // "METHOD /api/path"
	Who   string // the "who" column
}

// readmePublicTable reads the public table of README.md: the table whose
// header starts "| call | who |".
func readmePublicTable(t *testing.T) []publicRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "README.md"))
	require.NoError(t, err)
	var rows []publicRow
	inTable := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "| call | who |"):
			inTable = true
		case !inTable, strings.HasPrefix(line, "| --- "):
		case strings.HasPrefix(line, "| `"):
			cells := strings.Split(line, "|")
			require.GreaterOrEqual(t, len(cells), 4, line)
			call := strings.Fields(strings.SplitN(strings.TrimSpace(cells[1]), "`", 3)[1])
			require.Len(t, call, 2, line)
			rows = append(rows, publicRow{Route: call[0] + " " + strings.SplitN(call[1], "?", 2)[0], Who: strings.TrimSpace(cells[2])})
		default:
			require.NotEmpty(t, rows, "README.md: the public table has rows")
			return rows
		}
	}
	require.NotEmpty(t, rows, `README.md has a table whose header starts "| call | who |"`)
	return rows
}

// The four kinds of caller of the public API.
const (
	noToken       = "no token"
	customerKind  = "customer"
	otherCustomer = "another customer"
	operatorKind  = "operator"
)

// expectedStatus is what the README's "who" column promises a kind of
// caller: ok when it may make the call, absent when it asks about another
// customer's data (the route's "does not exist" answer).
func expectedStatus(who, kind string, ok, absent int) int {
	allows := func(role string) bool {
		for _, w := range strings.Split(who, ",") {
			if strings.HasPrefix(strings.TrimSpace(w), role) {
				return true
			}
		}
		return false
	}
	if allows("anyone") {
		return ok
	}
	switch kind {
	case noToken:
		return http.StatusUnauthorized
	case customerKind:
		if allows("customer") {
			return ok
		}
	case otherCustomer:
		if allows("customer (own)") {
			return absent
		}
		if allows("customer") {
			return ok
		}
	case operatorKind:
		if allows("operator") {
			return ok
		}
	}
	return http.StatusForbidden
}

// TestAuth checks every route of the README's public table with no token, a
// customer's token (on its own data), another customer's token (on the first
// one's data) and an operator's token, against the statuses the table's
// "who" column promises; and that what the refused callers tried changed
// nothing. It also checks the tokens the gateway must refuse.
func TestAuth(t *testing.T) {
	sys := harness.Start(t, harness.Options{})
	gw := sys.GatewayURL()
	ada, grace := createUser(t, gw), createUser(t, gw)
	tokens := map[string]string{
		noToken:       "",
		customerKind:  harness.Token(t, customer(ada.ID)),
		otherCustomer: harness.Token(t, customer(grace.ID)),
		operatorKind:  harness.Token(t, operatorCaller),
	}
	p := createProduct(t, gw, 500, 1000)
	// Ada's order, paid, and her notifications exist before anyone asks.
	paidOrder := placeOrder(t, gw, ada.ID, p.ID, 1)
	pay := do(t, http.MethodPost, gw+"/api/payments", map[string]any{"order_id": paidOrder.ID, "amount_cents": paidOrder.TotalCents}, "Idempotency-Key", uuid.NewString())
	require.Equal(t, http.StatusCreated, pay.Status, "%s", pay.Body)
	var payment struct{ ID string }
	pay.JSON(t, &payment)
	waitNotifications(t, gw, ada.ID, 1)

	// A call of the table: what to send, and the statuses for "may" and
	// for "another customer's". fresh runs before each caller's attempt.
	type call struct {
		method, path string
		body         func() any
		headers      func() []string
		ok, absent   int
	}
	var unpaid, shippable order // fresh before each attempt that could change them
	calls := map[string]call{
		"POST /api/users": {method: http.MethodPost, path: "/api/users", ok: http.StatusCreated,
			body: func() any { return map[string]any{"name": "Signer", "email": uniqueEmail()} }},
		"GET /api/users/{id}":    {method: http.MethodGet, path: "/api/users/" + ada.ID, ok: http.StatusOK, absent: http.StatusNotFound},
		"POST /api/products":     {method: http.MethodPost, path: "/api/products", ok: http.StatusCreated, body: func() any { return map[string]any{"name": "Lamp", "price_cents": 100, "stock": 1} }},
		"GET /api/products":      {method: http.MethodGet, path: "/api/products", ok: http.StatusOK},
		"GET /api/products/{id}": {method: http.MethodGet, path: "/api/products/" + p.ID, ok: http.StatusOK},
		"POST /api/orders": {method: http.MethodPost, path: "/api/orders", ok: http.StatusCreated, absent: http.StatusUnprocessableEntity,
			body: func() any { return map[string]any{"user_id": ada.ID, "product_id": p.ID, "quantity": 1} }},
		"GET /api/orders/{id}":       {method: http.MethodGet, path: "/api/orders/" + paidOrder.ID, ok: http.StatusOK, absent: http.StatusNotFound},
		"POST /api/orders/{id}/ship": {method: http.MethodPost, ok: http.StatusOK},
		"POST /api/payments": {method: http.MethodPost, path: "/api/payments", ok: http.StatusCreated, absent: http.StatusUnprocessableEntity,
			body:    func() any { return map[string]any{"order_id": unpaid.ID, "amount_cents": unpaid.TotalCents} },
			headers: func() []string { return []string{"Idempotency-Key", uuid.NewString()} }},
		"GET /api/payments/{id}":              {method: http.MethodGet, path: "/api/payments/" + payment.ID, ok: http.StatusOK, absent: http.StatusNotFound},
		"GET /api/notifications":              {method: http.MethodGet, path: "/api/notifications?user_id=" + ada.ID, ok: http.StatusOK, absent: http.StatusNotFound},
		"GET /api/notifications/dead-letters": {method: http.MethodGet, path: "/api/notifications/dead-letters", ok: http.StatusOK},
		"GET /api/status":                     {method: http.MethodGet, path: "/api/status", ok: http.StatusOK},
	}

	rows := readmePublicTable(t)
	var listed []string
	for _, row := range rows {
		listed = append(listed, row.Route)
	}
	var tested []string
	for route := range calls {
		tested = append(tested, route)
	}
	require.ElementsMatch(t, tested, listed, "this test covers exactly the README's public table")

	for _, row := range rows {
		c := calls[row.Route]
		// The customer goes last: the refused callers try first, on state
		// the customer's own call would change.
		for _, kind := range []string{noToken, otherCustomer, operatorKind, customerKind} {
			t.Run(row.Route+"/"+kind, func(t *testing.T) {
				unpaid = placeOrder(t, gw, ada.ID, p.ID, 1)
				shippable = unpaid
				path := c.path
				if row.Route == "POST /api/orders/{id}/ship" {
					path = "/api/orders/" + shippable.ID + "/ship"
				}
				var body any
				if c.body != nil {
					body = c.body()
				}
				headers := []string{"Authorization", ""}
				if tokens[kind] != "" {
					headers = []string{"Authorization", "Bearer " + tokens[kind]}
				}
				if c.headers != nil {
					headers = append(headers, c.headers()...)
				}
				stockBefore := getProduct(t, gw, p.ID).Stock

				res := do(t, c.method, gw+path, body, headers...)

				want := expectedStatus(row.Who, kind, c.ok, c.absent)
				require.Equal(t, want, res.Status, "%s as %s (who: %s): %s", row.Route, kind, row.Who, res.Body)
				if want >= 400 {
					assert.NotEmpty(t, res.ErrorCode(), "a JSON error: %s", res.Body)
					if tokens[kind] != "" {
						assert.NotContains(t, string(res.Body), tokens[kind], "the token is never returned")
					}
					if want == http.StatusUnauthorized {
						assert.Equal(t, "unauthorized", res.ErrorCode())
						assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Bearer")
					}
					if want == http.StatusForbidden {
						assert.Equal(t, "forbidden", res.ErrorCode())
					}
					// Refused: nothing changed.
					assert.Equal(t, stockBefore, getProduct(t, gw, p.ID).Stock, "stock unchanged")
					var o order
					do(t, http.MethodGet, gw+"/api/orders/"+unpaid.ID, nil).JSON(t, &o)
					assert.Equal(t, "created", o.Status, "the fresh order is neither paid nor shipped")
				}
			})
		}
	}

	t.Run("tokens the gateway refuses", func(t *testing.T) {
		other, err := devkey.New()
		require.NoError(t, err)
		foreign, err := other.Token(customer(ada.ID), time.Hour)
		require.NoError(t, err)
		expired, err := sign(t, customer(ada.ID), -2*time.Hour, -time.Hour)
		require.NoError(t, err)
		parts := strings.Split(tokens[customerKind], ".")
		for name, header := range map[string]string{
			"another issuer's key":        "Bearer " + foreign,
			"expired":                     "Bearer " + expired,
			"alg none":                    "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
			"signature cut":               "Bearer " + parts[0] + "." + parts[1] + ".",
			"not a bearer token":          "Basic " + tokens[customerKind],
			"a forged caller header only": "",
		} {
			t.Run(name, func(t *testing.T) {
				res := do(t, http.MethodGet, gw+"/api/orders/"+paidOrder.ID, nil, "Authorization", header, identity.Header, "operator:root")
				assert.Equal(t, http.StatusUnauthorized, res.Status, "%s", res.Body)
				assert.Equal(t, "unauthorized", res.ErrorCode())
			})
		}
	})

	t.Run("health stays open", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz"} {
			assert.Equal(t, http.StatusOK, do(t, http.MethodGet, gw+path, nil, "Authorization", "").Status, path)
		}
	})

	t.Run("no token reaches a log", func(t *testing.T) {
		for _, p := range sys.Procs() {
			data, err := os.ReadFile(p.LogPath)
			require.NoError(t, err)
			for kind, tok := range tokens {
				if tok != "" {
					assert.NotContains(t, string(data), tok, "%s's log holds the %s token", p.Name, kind)
				}
			}
		}
	})
}

// sign signs a development token for c valid from now+from to now+to.
func sign(t *testing.T, c identity.Caller, from, to time.Duration) (string, error) {
	t.Helper()
	now := time.Now()
	return harness.SignWith(t, c, now.Add(from), now.Add(to))
}
