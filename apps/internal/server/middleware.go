package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// RequestIDHeader carries a request's id across apps; the gateway sets it and
// every app passes it on when it calls another.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Middleware wraps h with request ids, trace context, request metrics, access
// logs and panic recovery. Health probes and metric scrapes are not logged:
// orchestrators and Prometheus call them every few seconds.
//
// The request joins the trace its traceparent header names (a sidecar sends
// it), or starts one; the header is set on the request either way, so a
// handler that forwards the request's headers passes the trace on.
func Middleware(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if id == "" || len(id) > 128 {
			id = newRequestID()
		}
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		trace := telemetry.FromRequest(r)
		ctx = telemetry.WithTrace(ctx, trace)
		ctx, info := telemetry.WithRequest(ctx)
		r.Header.Set(telemetry.TraceparentHeader, trace.Traceparent())
		r = r.WithContext(ctx)
		w.Header().Set(RequestIDHeader, id)

		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					// net/http's own way to break a response off: let it.
					panic(p)
				}
				log.ErrorContext(ctx, "panic", "request_id", id, "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 {
					api.WriteJSON(rec, http.StatusInternalServerError, api.ErrorBody{Error: api.Error{Code: api.CodeInternal, Message: "internal error"}})
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK // what net/http answers for a handler that wrote nothing
			}
			telemetry.ObserveRequest(r.Method, info, status, time.Since(start))
			if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == telemetry.MetricsPath {
				return // probes and scrapes, every few seconds: counted, not logged
			}
			level := slog.LevelDebug
			if rec.status >= 500 {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
		}()
		h.ServeHTTP(rec, r)
	})
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush lets streaming handlers flush through the recorder.
func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// AppTokenHeader is where a Dapr sidecar puts APP_API_TOKEN when it calls its
// app (and where an app puts DAPR_API_TOKEN when it calls its sidecar).
const AppTokenHeader = "dapr-api-token"

// RequireAppToken lets through only requests that carry token in the
// dapr-api-token header, as the app's own sidecar sends it: anything else on
// the machine that reaches the app's port directly is refused with 401.
// Health probes and metrics (counts and latencies by route template: no ids,
// no secrets) stay open. An empty token turns the check off.
func RequireAppToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && r.URL.Path != telemetry.MetricsPath &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get(AppTokenHeader)), want) != 1 {
			api.WriteJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: api.Error{Code: api.CodeUnauthorized, Message: "this app accepts calls only from its Dapr sidecar"}})
			return
		}
		h.ServeHTTP(w, r)
	})
}
