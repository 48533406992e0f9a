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

// refusals counts the requests answered with an error body, by its code:
// orders refused for insufficient_stock or unknown_user, payments refused as
// idempotency_key_reused, dependency_unavailable anywhere.
var refusals = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "http_server_errors_total",
	Help: "Requests answered with a JSON error, by method, route template and error code.",
}, []string{"method", "route", "code"})

type requestKey struct{}

// Request is what the middleware learns about a request while the router
// and the handler serve it: the matched route (CaptureRoute) and the code of
// the error answered (RecordErrorCode).
type Request struct {
	route, code string
}

// WithRequest returns ctx carrying a Request for the layers inside to fill.
func WithRequest(ctx context.Context) (context.Context, *Request) {
	req := &Request{}
	return context.WithValue(ctx, requestKey{}, req), req
}

// Route is the template of the route that served the request.
func (r *Request) Route() string {
	if r.route == "" {
		return UnmatchedRoute
	}
	return r.route
}

// RecordErrorCode notes the code of the error a request is answered with.
func RecordErrorCode(ctx context.Context, code string) {
	if req, ok := ctx.Value(requestKey{}).(*Request); ok {
		req.code = code
	}
}

// CaptureRoute is a gorilla/mux middleware that records the matched route's
// template for the request metrics.
func CaptureRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if req, ok := r.Context().Value(requestKey{}).(*Request); ok {
			if route := mux.CurrentRoute(r); route != nil {
				if tpl, err := route.GetPathTemplate(); err == nil {
					req.route = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ObserveRequest records one answered request.
func ObserveRequest(method string, req *Request, status int, took time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other" // a client's made-up verbs do not make series
	}
	requestDuration.WithLabelValues(method, req.Route(), strconv.Itoa(status)).Observe(took.Seconds())
	if req.code != "" {
		refusals.WithLabelValues(method, req.Route(), req.code).Inc()
	}
}
