package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/config"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// PublicRoute is one call of the public API: the README's public table, row
// by row. The gateway serves exactly these and answers anything else 404 (or
// 405 for another verb on a listed path): no service route is reachable from
// outside unless it is listed here.
type PublicRoute struct {
	Method, Path string
	// Service is the app the call goes to ("users", ...), "" for the
	// gateway's own /api/status.
	Service string
	// Who may call it; the README's "who" column says the same in words.
	Who access
	// Owner, when set, reads the user a request is about, so the gateway
	// can refuse a customer another user's data before forwarding (the
	// service checks again).
	Owner func(*http.Request) string
}

// PublicAPI is the public table.
var PublicAPI = []PublicRoute{
	{Method: http.MethodPost, Path: "/api/users", Service: "users", Who: anyone},
	{Method: http.MethodGet, Path: "/api/users/{id}", Service: "users", Who: customers | own, Owner: pathVar("id")},
	{Method: http.MethodPost, Path: "/api/products", Service: "products", Who: operators},
	{Method: http.MethodGet, Path: "/api/products", Service: "products", Who: customers | operators},
	{Method: http.MethodGet, Path: "/api/products/{id}", Service: "products", Who: customers | operators},
	{Method: http.MethodPost, Path: "/api/orders", Service: "orders", Who: customers | own},
	{Method: http.MethodGet, Path: "/api/orders/{id}", Service: "orders", Who: customers | own | operators},
	{Method: http.MethodPost, Path: "/api/orders/{id}/ship", Service: "orders", Who: operators},
	{Method: http.MethodPost, Path: "/api/payments", Service: "payments", Who: customers | own},
	{Method: http.MethodGet, Path: "/api/payments/{id}", Service: "payments", Who: customers | own},
	{Method: http.MethodGet, Path: "/api/notifications", Service: "notifications", Who: customers | own, Owner: queryVar("user_id")},
	{Method: http.MethodGet, Path: "/api/notifications/dead-letters", Service: "notifications", Who: operators},
	{Method: http.MethodGet, Path: "/api/status", Who: operators},
}

func pathVar(name string) func(*http.Request) string {
	return func(r *http.Request) string { return mux.Vars(r)[name] }
}

func queryVar(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.URL.Query().Get(name) }
}

// Timeouts bound how long the gateway waits for a service, per service; a
// service not listed gets Default.
type Timeouts struct {
	Default time.Duration
	// PerService overrides Default: payments waits out payments' own worst
	// case (GATEWAY_PAYMENTS_TIMEOUT).
	PerService map[string]time.Duration
}

// PaymentsWorstCase is the longest payments takes to answer one request, as
// payments states it; the gateway's default wait for payments is above it,
// so it never gives up on a payment still going through.
const PaymentsWorstCase = 20 * time.Second

// LoadTimeouts reads GATEWAY_PAYMENTS_TIMEOUT (default 25s). Other services
// get no bound of the gateway's own: their sidecar's resiliency timeouts
// (dapr/resources/resiliency-edge.yaml) apply.
func LoadTimeouts(getenv config.Getenv) (Timeouts, error) {
	payments, err := config.DurationVar(getenv, "GATEWAY_PAYMENTS_TIMEOUT", PaymentsWorstCase+5*time.Second)
	if err != nil {
		return Timeouts{}, err
	}
	return Timeouts{PerService: map[string]time.Duration{"payments": payments}}, nil
}

func (t Timeouts) of(service string) time.Duration {
	if d, ok := t.PerService[service]; ok {
		return d
	}
	return t.Default
}

// routes registers the public API. own holds the routes the gateway answers
// itself (keyed "METHOD path"); every other route of PublicAPI is forwarded
// to its service.
func routes(log *slog.Logger, g *Gateway, auth *Authenticator, peers config.Peers, timeouts Timeouts, ready http.Handler, own map[string]http.Handler) http.Handler {
	r := server.NewRouter(ready)
	apps := map[string]string{
		"users": peers.Users, "products": peers.Products, "orders": peers.Orders,
		"payments": peers.Payments, "notifications": peers.Notifications,
	}
	for _, rt := range PublicAPI {
		h, ok := own[rt.Method+" "+rt.Path]
		if !ok {
			app, known := apps[rt.Service]
			if !known {
				panic("gateway: no handler for " + rt.Method + " " + rt.Path)
			}
			h = g.Forward(app, timeouts.of(rt.Service))
		}
		r.Handle(rt.Path, auth.Guard(rt.Who, rt.Owner, h)).Methods(rt.Method)
	}
	// Every public request starts a trace of its own; X-Trace-Id names it.
	routed := server.Handler(log, r)
	routed.Handler = telemetry.StartAtEdge(routed.Handler)
	return routed
}
