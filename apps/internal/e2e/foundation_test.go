//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// TestFoundation covers the user-facing flows of the public API through the
// gateway, with every call crossing real sidecars.
func TestFoundation(t *testing.T) {
	sys := harness.Start(t, harness.Options{})
	gw := sys.GatewayURL()

	t.Run("users: create and get", func(t *testing.T) {
		email := uniqueEmail()
		res := do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "  Grace Hopper ", "email": strings.ToUpper(email)})
		require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
		var created user
		res.JSON(t, &created)
		assert.NotEmpty(t, created.ID)
		assert.Equal(t, "Grace Hopper", created.Name)
		assert.Equal(t, email, created.Email, "email is stored lower-cased")
		assert.False(t, created.CreatedAt.IsZero())

		res = do(t, http.MethodGet, gw+"/api/users/"+created.ID, nil)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
		var got user
		res.JSON(t, &got)
		assert.Equal(t, created.ID, got.ID)
		assert.Equal(t, created.Email, got.Email)

		res = do(t, http.MethodGet, gw+"/api/users/no-such-user", nil)
		assert.Equal(t, http.StatusNotFound, res.Status)
		assert.Equal(t, "not_found", res.ErrorCode())
	})

	t.Run("users: duplicate email is 409", func(t *testing.T) {
		email := uniqueEmail()
		res := do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "First", "email": email})
		require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
		res = do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "Second", "email": " " + strings.ToUpper(email)})
		assert.Equal(t, http.StatusConflict, res.Status, "%s", res.Body)
		assert.Equal(t, "email_taken", res.ErrorCode())
	})

	t.Run("users: racing sign-ups with one email, exactly one wins", func(t *testing.T) {
		email := uniqueEmail()
		const n = 20
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				statuses[i] = do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "Racer", "email": email}).Status
			})
		}
		wg.Wait()
		count := map[int]int{}
		for _, s := range statuses {
			count[s]++
		}
		assert.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusConflict: n - 1}, count)
	})

	t.Run("products: create, list and get", func(t *testing.T) {
		a := createProduct(t, gw, 1999, 5)
		b := createProduct(t, gw, 250, 0)
		assert.Equal(t, int64(1999), a.PriceCents)
		assert.Equal(t, int64(5), a.Stock)

		res := do(t, http.MethodGet, gw+"/api/products", nil)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
		var list []product
		res.JSON(t, &list)
		ids := map[string]int{}
		for i, p := range list {
			ids[p.ID] = i
		}
		require.Contains(t, ids, a.ID)
		require.Contains(t, ids, b.ID)
		assert.Less(t, ids[a.ID], ids[b.ID], "listed in creation order")

		assert.Equal(t, b, getProduct(t, gw, b.ID))
		res = do(t, http.MethodGet, gw+"/api/products/nope", nil)
		assert.Equal(t, http.StatusNotFound, res.Status)
		assert.Equal(t, "not_found", res.ErrorCode())
	})

	t.Run("orders: create, get, and the refusals", func(t *testing.T) {
		u := createUser(t, gw)
		p := createProduct(t, gw, 1250, 3)

		res := do(t, http.MethodPost, gw+"/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 2})
		require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
		var o order
		res.JSON(t, &o)
		assert.Equal(t, int64(2500), o.TotalCents)
		assert.Equal(t, "created", o.Status)
		assert.Equal(t, u.ID, o.UserID)
		assert.Equal(t, p.ID, o.ProductID)
		assert.Equal(t, int64(1), getProduct(t, gw, p.ID).Stock, "the order took its stock")

		res = do(t, http.MethodGet, gw+"/api/orders/"+o.ID, nil)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
		var got order
		res.JSON(t, &got)
		assert.Equal(t, o.ID, got.ID)
		assert.Equal(t, o.TotalCents, got.TotalCents)
		assert.Equal(t, http.StatusNotFound, do(t, http.MethodGet, gw+"/api/orders/nope", nil).Status)

		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"unknown user", map[string]any{"user_id": "no-such-user", "product_id": p.ID, "quantity": 1}, http.StatusUnprocessableEntity, "unknown_user"},
			{"unknown product", map[string]any{"user_id": u.ID, "product_id": "no-such-product", "quantity": 1}, http.StatusUnprocessableEntity, "unknown_product"},
			{"quantity above stock", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 2}, http.StatusConflict, "insufficient_stock"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := do(t, http.MethodPost, gw+"/api/orders", tc.body)
				assert.Equal(t, tc.status, res.Status, "%s", res.Body)
				assert.Equal(t, tc.code, res.ErrorCode())
				assert.Equal(t, int64(1), getProduct(t, gw, p.ID).Stock, "a refused order takes no stock")
			})
		}
	})

	t.Run("bad input is a 400 JSON error and changes nothing", func(t *testing.T) {
		u := createUser(t, gw)
		p := createProduct(t, gw, 100, 10)
		email := uniqueEmail()
		huge := `{"name":"` + strings.Repeat("x", 70<<10) + `","email":"` + email + `"}`
		for _, tc := range []struct {
			name, path, body string
		}{
			{"users: malformed JSON", "/api/users", `{"name": "A", "email": `},
			{"users: not an object", "/api/users", `[1,2]`},
			{"users: unknown field", "/api/users", jsonf(`{"name":"A","email":%q,"admin":true}`, email)},
			{"users: wrong type", "/api/users", jsonf(`{"name":42,"email":%q}`, email)},
			{"users: missing email", "/api/users", `{"name":"A"}`},
			{"users: bad email", "/api/users", `{"name":"A","email":"not-an-email"}`},
			{"users: body over the limit", "/api/users", huge},
			{"users: two objects", "/api/users", jsonf(`{"name":"A","email":%q}{}`, email)},
			{"products: missing price", "/api/products", `{"name":"Lamp","stock":1}`},
			{"products: negative stock", "/api/products", `{"name":"Lamp","price_cents":5,"stock":-1}`},
			{"products: price as string", "/api/products", `{"name":"Lamp","price_cents":"5","stock":1}`},
			{"products: empty body", "/api/products", ``},
			{"orders: missing quantity", "/api/orders", jsonf(`{"user_id":%q,"product_id":%q}`, u.ID, p.ID)},
			{"orders: zero quantity", "/api/orders", jsonf(`{"user_id":%q,"product_id":%q,"quantity":0}`, u.ID, p.ID)},
			{"orders: negative quantity", "/api/orders", jsonf(`{"user_id":%q,"product_id":%q,"quantity":-3}`, u.ID, p.ID)},
			{"orders: fractional quantity", "/api/orders", jsonf(`{"user_id":%q,"product_id":%q,"quantity":1.5}`, u.ID, p.ID)},
			{"orders: unknown field", "/api/orders", jsonf(`{"user_id":%q,"product_id":%q,"quantity":1,"price":0}`, u.ID, p.ID)},
			{"orders: missing user", "/api/orders", jsonf(`{"product_id":%q,"quantity":1}`, p.ID)},
			{"orders: id with a path in it", "/api/orders", jsonf(`{"user_id":"../orders","product_id":%q,"quantity":1}`, p.ID)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := do(t, http.MethodPost, gw+tc.path, tc.body)
				assert.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
				assert.NotEmpty(t, res.ErrorCode(), "JSON error body: %s", res.Body)
				assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
			})
		}
		// Nothing above was stored: the email is still free and the stock whole.
		assert.Equal(t, int64(10), getProduct(t, gw, p.ID).Stock)
		res := do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "A", "email": email})
		assert.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
		res = do(t, http.MethodGet, gw+"/api/products", nil)
		var list []product
		res.JSON(t, &list)
		for _, p := range list {
			assert.NotEqual(t, "Lamp", p.Name, "a rejected product was stored")
		}
	})

	t.Run("calls through a sidecar, in both URL forms", func(t *testing.T) {
		u := createUser(t, gw)
		users := sys.App("users")
		// From the gateway's sidecar, which the access policy lets read and
		// register users; its API wants the system's token.
		via := sys.App("gateway")
		token := sys.DaprToken
		res := do(t, http.MethodGet, via.SidecarURL()+"/v1.0/invoke/"+users.ID+"/method/users/"+u.ID, nil, "dapr-api-token", token)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
		var got user
		res.JSON(t, &got)
		assert.Equal(t, u.ID, got.ID)

		res = do(t, http.MethodGet, via.SidecarURL()+"/users/"+u.ID, nil, "dapr-app-id", users.ID, "dapr-api-token", token)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
		res.JSON(t, &got)
		assert.Equal(t, u.ID, got.ID)

		res = do(t, http.MethodPost, via.SidecarURL()+"/v1.0/invoke/"+users.ID+"/method/users", map[string]any{"name": "Via Sidecar", "email": uniqueEmail()}, "dapr-api-token", token)
		assert.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	})

	t.Run("every app is alive and ready", func(t *testing.T) {
		for _, name := range harness.Apps {
			a := sys.App(name)
			assert.Equal(t, http.StatusOK, do(t, http.MethodGet, a.URL()+"/healthz", nil).Status, name)
			assert.Equal(t, http.StatusOK, do(t, http.MethodGet, a.URL()+"/readyz", nil).Status, name)
		}
	})
}

// TestStoppingLeavesNoProcess stops a whole system and checks that none of
// its sidecars or apps is still running.
func TestStoppingLeavesNoProcess(t *testing.T) {
	sys := harness.Start(t, harness.Options{})
	var pids []int
	for _, p := range sys.Procs() {
		pids = append(pids, p.Pid())
		require.True(t, harness.Alive(p.Pid()), "%s runs", p.Name)
	}
	require.Len(t, pids, 13, "six apps, six sidecars and Sentry")
	sys.Stop()
	for _, p := range sys.Procs() {
		assert.False(t, harness.Alive(p.Pid()), "%s (pid %d) still runs", p.Name, p.Pid())
		assert.True(t, p.Exited())
	}
}
