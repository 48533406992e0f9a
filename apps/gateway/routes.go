package main

import (
	"log/slog"
	"net/http"

	"github.com/ordermesh/ordermesh/apps/internal/config"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// routes registers the public API: each service's resources under /api.
func routes(log *slog.Logger, g *Gateway, peers config.Peers, ready http.Handler, extra ...Route) http.Handler {
	r := server.NewRouter(ready)
	// Routes with behaviour of their own come before the plain forwarding.
	for _, e := range extra {
		r.Handle(e.Path, e.Handler).Methods(e.Method)
	}
	for _, svc := range []struct{ prefix, app string }{
		{"users", peers.Users},
		{"products", peers.Products},
		{"orders", peers.Orders},
		{"payments", peers.Payments},
		{"notifications", peers.Notifications},
	} {
		fwd := g.Forward(svc.app)
		r.Handle("/api/"+svc.prefix, fwd)
		r.PathPrefix("/api/" + svc.prefix + "/").Handler(fwd)
	}
	// Every public request starts a trace of its own; X-Trace-Id names it.
	return telemetry.StartAtEdge(server.Handler(log, r))
}

// Route is a gateway route that does more than forward.
type Route struct {
	Method, Path string
	Handler      http.Handler
}
