package server

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/health"
	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// NewRouter returns a router that answers unknown routes and wrong verbs with
// JSON errors and already serves /healthz, /readyz and /metrics.
func NewRouter(ready http.Handler) *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = api.NotFoundHandler()
	r.MethodNotAllowedHandler = api.MethodNotAllowedHandler()
	r.HandleFunc("/healthz", health.Live).Methods(http.MethodGet)
	r.Handle("/readyz", ready).Methods(http.MethodGet)
	r.Handle(telemetry.MetricsPath, telemetry.MetricsHandler()).Methods(http.MethodGet)
	return r
}

// Handler wraps a router with the middleware every app uses.
func Handler(log *slog.Logger, r *mux.Router) *Routed {
	r.Use(telemetry.CaptureRoute) // labels the request metrics by route template
	return &Routed{Handler: Middleware(log, r), Router: r}
}

// Routed is an app's router behind its middleware. It keeps the router so
// that a test can walk every route an app serves (apps/internal/surface).
type Routed struct {
	http.Handler
	Router *mux.Router
}
