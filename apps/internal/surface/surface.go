// Package surface is the shop's attack surface written down: every route of
// every app, whether clients reach it through the gateway, and which apps'
// sidecars may invoke it (the access policies of dapr/config.yaml). Nothing
// in the apps reads it; tests hold the code to it: each app's router, walked
// route by route, must serve exactly its rows (Check), and the end-to-end
// suite asks every route through the gateway and through every sidecar.
package surface

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// Apps are the six apps.
var Apps = []string{"gateway", "users", "products", "orders", "payments", "notifications"}

// Route is one route an app serves.
type Route struct {
	App    string // plain app name
	Method string
	Path   string // the app's template: /orders/{id}
	// Public is the gateway's route that forwards to it; "" when no client
	// reaches it. On the gateway's own rows it is the route itself.
	Public string
	// Callers are the apps whose sidecars may invoke it (by access
	// policy); an app reaching its own routes through its own sidecar is not
	// listed (Dapr does not apply policies to that).
	Callers []string
	// Delivered: Dapr delivers events here from a subscription; it is
	// invoked by no one.
	Delivered bool
}

// String is "app METHOD path".
func (r Route) String() string { return r.App + " " + r.Method + " " + r.Path }

// health are the rows every app has: /healthz for its sidecar's probe and
// orchestrators (not invoked through Dapr), /readyz also for the gateway's
// /api/status, and /metrics, which Prometheus scrapes on the app's own port
// (counts and latencies by route template: no ids, no secrets).
func health(app string) []Route {
	return []Route{
		{App: app, Method: http.MethodGet, Path: "/healthz"},
		{App: app, Method: http.MethodGet, Path: "/metrics"},
		{App: app, Method: http.MethodGet, Path: "/readyz", Callers: readyzCallers(app)},
	}
}

func readyzCallers(app string) []string {
	if app == "gateway" {
		return nil
	}
	return []string{"gateway"}
}

func public(app, method, path string) Route {
	return Route{App: app, Method: method, Path: path, Public: method + " /api" + path, Callers: []string{"gateway"}}
}

func gatewayRoute(method, path string) Route {
	return Route{App: "gateway", Method: method, Path: path, Public: method + " " + path}
}

// Routes is the whole surface.
var Routes = slices.Concat(
	health("gateway"),
	[]Route{
		gatewayRoute(http.MethodPost, "/api/users"),
		gatewayRoute(http.MethodGet, "/api/users/{id}"),
		gatewayRoute(http.MethodPost, "/api/products"),
		gatewayRoute(http.MethodGet, "/api/products"),
		gatewayRoute(http.MethodGet, "/api/products/{id}"),
		gatewayRoute(http.MethodPost, "/api/orders"),
		gatewayRoute(http.MethodGet, "/api/orders/{id}"),
		gatewayRoute(http.MethodPost, "/api/orders/{id}/ship"),
		gatewayRoute(http.MethodPost, "/api/payments"),
		gatewayRoute(http.MethodGet, "/api/payments/{id}"),
		gatewayRoute(http.MethodGet, "/api/notifications"),
		gatewayRoute(http.MethodGet, "/api/notifications/dead-letters"),
		gatewayRoute(http.MethodGet, "/api/status"),
	},
	health("users"),
	[]Route{
		public("users", http.MethodPost, "/users"),
		public("users", http.MethodGet, "/users/{id}"),
		{App: "users", Method: http.MethodGet, Path: "/internal/users/{id}", Callers: []string{"orders"}},
	},
	health("products"),
	[]Route{
		public("products", http.MethodPost, "/products"),
		public("products", http.MethodGet, "/products"),
		public("products", http.MethodGet, "/products/{id}"),
		// Stock moves only for orders (issue 11: through the gateway, any
		// client could reserve or release stock).
		{App: "products", Method: http.MethodPost, Path: "/internal/products/{id}/reservations", Callers: []string{"orders"}},
		{App: "products", Method: http.MethodDelete, Path: "/internal/products/{id}/reservations/{order_id}", Callers: []string{"orders"}},
		{App: "products", Method: http.MethodPost, Path: "/internal/products/{id}/reservations/{order_id}/confirm", Callers: []string{"orders"}},
	},
	health("orders"),
	[]Route{
		public("orders", http.MethodPost, "/orders"),
		public("orders", http.MethodGet, "/orders/{id}"),
		public("orders", http.MethodPost, "/orders/{id}/ship"),
		{App: "orders", Method: http.MethodGet, Path: "/internal/orders/{id}", Callers: []string{"payments", "products"}},
		{App: "orders", Method: http.MethodPost, Path: "/events/payments", Delivered: true},
	},
	health("payments"),
	[]Route{
		public("payments", http.MethodPost, "/payments"),
		public("payments", http.MethodGet, "/payments/{id}"),
	},
	health("notifications"),
	[]Route{
		public("notifications", http.MethodGet, "/notifications"),
		public("notifications", http.MethodGet, "/notifications/dead-letters"),
		{App: "notifications", Method: http.MethodPost, Path: "/events/orders", Delivered: true},
		{App: "notifications", Method: http.MethodPost, Path: "/events/dead-letters", Delivered: true},
	},
)

// Of returns an app's rows.
func Of(app string) []Route {
	var out []Route
	for _, r := range Routes {
		if r.App == app {
			out = append(out, r)
		}
	}
	return out
}

// Walk lists the routes a router serves, as "METHOD path", sorted.
func Walk(r *mux.Router) ([]string, error) {
	var out []string
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return nil // a route without a path (none here) matches nothing to walk
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s has no method: every route names its verbs", path)
		}
		for _, m := range methods {
			out = append(out, m+" "+path)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Check compares what an app's router serves with its rows: the routes
// missing from the router and those it serves unlisted (both empty when
// they agree).
func Check(app string, r *mux.Router) (missing, unlisted []string, err error) {
	served, err := Walk(r)
	if err != nil {
		return nil, nil, err
	}
	var want []string
	for _, row := range Of(app) {
		want = append(want, row.Method+" "+row.Path)
	}
	for _, w := range want {
		if !slices.Contains(served, w) {
			missing = append(missing, w)
		}
	}
	for _, s := range served {
		if !slices.Contains(want, s) {
			unlisted = append(unlisted, s)
		}
	}
	return missing, unlisted, nil
}

// Concrete fills a template's {vars} with value.
func Concrete(path, value string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			parts[i] = value
		}
	}
	return strings.Join(parts, "/")
}

// Require fails t unless h, an app's handler as its routes function builds
// it (a *server.Routed), serves exactly the app's rows.
func Require(t testing.TB, app string, h http.Handler) {
	t.Helper()
	routed, ok := h.(*server.Routed)
	if !ok {
		t.Fatalf("surface: %s's handler is a %T, not the *server.Routed that server.Handler makes", app, h)
	}
	missing, unlisted, err := Check(app, routed.Router)
	if err != nil {
		t.Fatalf("surface: walk %s's routes: %v", app, err)
	}
	if len(missing) > 0 {
		t.Errorf("surface: %s does not serve %v, listed in apps/internal/surface", app, missing)
	}
	if len(unlisted) > 0 {
		t.Errorf("surface: %s serves %v, which apps/internal/surface does not list: add each new route there with who may reach it", app, unlisted)
	}
}
