//go:build e2e

package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/apps/internal/surface"
)

// deniedByPolicy is how a callee's sidecar refuses a call its access policy
// does not allow.
const deniedByPolicy = "access control policy has denied access"

// TestSurface asks every route of every app (apps/internal/surface, which
// each app's unit test holds its router to) through the gateway and through
// every other app's sidecar, and checks it is reachable exactly by whom the
// surface says: the gateway forwards only the public table, and each sidecar
// lets in only the callers its access policy lists.
func TestSurface(t *testing.T) {
	sys := harness.Start(t, harness.Options{})
	gw := sys.GatewayURL()

	t.Run("the gateway forwards nothing off the public table", func(t *testing.T) {
		for _, r := range surface.Routes {
			if r.Public != "" {
				continue
			}
			// What a client would try: the route under /api, as the gateway's
			// old prefix forwarding sent it on.
			path := "/api" + surface.Concrete(r.Path, "x-1")
			for _, as := range []string{"operator", "customer"} {
				t.Run(r.String()+" as "+as, func(t *testing.T) {
					auth := "Bearer " + harness.Token(t, operatorCaller)
					if as == "customer" {
						auth = "Bearer " + harness.Token(t, customer("x-1"))
					}
					res := do(t, r.Method, gw+path, "{}", "Authorization", auth)
					assert.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, res.Status, "%s %s: %s", r.Method, path, res.Body)
					assert.Contains(t, []string{"not_found", "method_not_allowed"}, res.ErrorCode())
				})
			}
		}
	})

	t.Run("each sidecar lets in exactly the listed callers", func(t *testing.T) {
		for _, r := range surface.Routes {
			target := sys.App(r.App)
			method := strings.TrimPrefix(surface.Concrete(r.Path, "x-1"), "/")
			for _, caller := range surface.Apps {
				if caller == r.App {
					continue // Dapr applies no policy to an app calling itself
				}
				t.Run(r.String()+" from "+caller, func(t *testing.T) {
					// An empty body and made-up ids: an allowed call is refused
					// by the app itself (400, 404, a refusal) and changes nothing.
					res := do(t, r.Method, sys.App(caller).SidecarURL()+"/v1.0/invoke/"+target.ID+"/method/"+method, "{}",
						"dapr-api-token", sys.DaprToken)
					if slices.Contains(r.Callers, caller) {
						assert.NotContains(t, string(res.Body), deniedByPolicy, "%s may call it", caller)
						assert.NotEqual(t, http.StatusUnauthorized, res.Status, "%s", res.Body)
						return
					}
					assert.Equal(t, http.StatusForbidden, res.Status, "%s may not call it: %s", caller, res.Body)
					assert.Contains(t, string(res.Body), deniedByPolicy)
				})
			}
		}
	})
}

// TestReservationAttacks replays issue 11's two attacks through the gateway:
// releasing an order's reservation and reserving stock for a made-up order.
// Both answer 404 to every caller, and the stock does not move.
func TestReservationAttacks(t *testing.T) {
	sys := harness.Start(t, harness.Options{})
	gw := sys.GatewayURL()
	u := createUser(t, gw)

	// A product with stock 1 and one order: stock 0.
	scarce := createProduct(t, gw, 100, 1)
	o := placeOrder(t, gw, u.ID, scarce.ID, 1)
	require.Zero(t, getProduct(t, gw, scarce.ID).Stock)
	plenty := createProduct(t, gw, 100, 10)

	callers := map[string][]string{
		"no token": {"Authorization", ""},
		"customer": {"Authorization", "Bearer " + harness.Token(t, customer(u.ID))},
		"operator": {"Authorization", "Bearer " + harness.Token(t, operatorCaller)},
	}
	for name, auth := range callers {
		t.Run(name, func(t *testing.T) {
			res := do(t, http.MethodDelete, gw+"/api/products/"+scarce.ID+"/reservations/"+o.ID, nil, auth...)
			assert.Equal(t, http.StatusNotFound, res.Status, "%s", res.Body)
			assert.Equal(t, "not_found", res.ErrorCode())

			res = do(t, http.MethodPost, gw+"/api/products/"+plenty.ID+"/reservations", map[string]any{"order_id": "fake-1", "quantity": 10}, auth...)
			assert.Equal(t, http.StatusNotFound, res.Status, "%s", res.Body)
			assert.Equal(t, "not_found", res.ErrorCode())
		})
	}
	assert.Zero(t, getProduct(t, gw, scarce.ID).Stock, "the released stock was not put back on sale")
	assert.EqualValues(t, 10, getProduct(t, gw, plenty.ID).Stock, "nothing was held for a made-up order")
	res := do(t, http.MethodPost, gw+"/api/orders", map[string]any{"user_id": u.ID, "product_id": scarce.ID, "quantity": 1})
	assert.Equal(t, http.StatusConflict, res.Status, "no second order on the one unit: %s", res.Body)
	assert.Equal(t, "insufficient_stock", res.ErrorCode())
}
