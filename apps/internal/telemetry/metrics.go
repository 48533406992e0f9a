package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where every app serves its Prometheus metrics.
const MetricsPath = "/metrics"

// UnmatchedRoute labels requests no route matched, so a scan of random paths
// cannot create a series per path.
const UnmatchedRoute = "unmatched"

// requestDuration is the one request metric: its _count is the number of
// requests, by route template (never the raw path: ids would make a series
// per order) and status.
var requestDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "http_server_request_duration_seconds",
	Help:    "Time to answer an HTTP request, by method, route template and status code.",
	Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
}, []string{"method", "route", "status"})

// MetricsHandler serves the process's metrics in the Prometheus text format.
func MetricsHandler() http.Handler { return promhttp.Handler() }

type routeKey struct{}

// routeHolder is filled in by CaptureRoute inside the router and read by the
// middleware outside it, once the request is done.
type routeHolder struct{ template string }

// WithRouteHolder returns ctx with room for the route template CaptureRoute
// records, and a function that reads it afterwards.
func WithRouteHolder(ctx context.Context) (context.Context, func() string) {
	h := &routeHolder{}
	return context.WithValue(ctx, routeKey{}, h), func() string {
		if h.template == "" {
			return UnmatchedRoute
		}
		return h.template
	}
}

// CaptureRoute is a gorilla/mux middleware that records the matched route's
// template for the request metrics.
func CaptureRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
			if route := mux.CurrentRoute(r); route != nil {
				if tpl, err := route.GetPathTemplate(); err == nil {
					h.template = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ObserveRequest records one answered request.
func ObserveRequest(method, route string, status int, took time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other" // a client's made-up verbs do not make series
	}
	requestDuration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(took.Seconds())
}
