// Package telemetry is what makes an app observable the same way in every
// app: W3C trace context carried from request to log line to the calls the
// app makes through its sidecar, and Prometheus metrics of the requests it
// serves. The apps export no spans of their own: their sidecars do (see the
// `tracing` section of dapr/config.yaml); an app only passes the trace on.
package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
)

// TraceparentHeader and TracestateHeader carry W3C trace context
// (https://www.w3.org/TR/trace-context/) between processes; Dapr sidecars
// read and write them.
const (
	TraceparentHeader = "traceparent"
	TracestateHeader  = "tracestate"
)

// TraceIDHeader is where the gateway answers with the trace id of a request,
// so a client can quote it and an operator can find the whole trace.
const TraceIDHeader = "X-Trace-Id"

// Trace is one position in a trace: the trace id, the span the next call is
// a child of, and whether the trace is sampled.
type Trace struct {
	TraceID string // 32 lowercase hex digits, not all zero
	SpanID  string // 16 lowercase hex digits, not all zero
	Sampled bool
	State   string // tracestate, passed on untouched
}

// Traceparent renders the trace as a version-00 traceparent header value.
func (t Trace) Traceparent() string {
	flags := "00"
	if t.Sampled {
		flags = "01"
	}
	return "00-" + t.TraceID + "-" + t.SpanID + "-" + flags
}

// ParseTraceparent reads a traceparent header value; ok is false for
// anything that is not a valid one (then a new trace is started instead).
func ParseTraceparent(v string) (t Trace, ok bool) {
	parts := strings.Split(strings.TrimSpace(v), "-")
	// Version 00 has exactly four fields; a later version may add fields
	// after them, which a version-00 reader ignores.
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || (parts[0] == "00" && len(parts) != 4) {
		return Trace{}, false
	}
	version, traceID, spanID, flags := parts[0], parts[1], parts[2], parts[3]
	if !isHex(version, 2) || !isHex(traceID, 32) || !isHex(spanID, 16) || !isHex(flags, 2) ||
		allZero(traceID) || allZero(spanID) {
		return Trace{}, false
	}
	b, _ := hex.DecodeString(flags)
	return Trace{TraceID: traceID, SpanID: spanID, Sampled: b[0]&1 == 1}, true
}

// NewTrace starts a sampled trace with fresh random ids.
func NewTrace() Trace {
	return Trace{TraceID: randomHex(16), SpanID: randomHex(8), Sampled: true}
}

// FromRequest returns the trace a request belongs to: the one its
// traceparent header names, or a new one when it has none (or a bad one).
func FromRequest(r *http.Request) Trace {
	t, ok := ParseTraceparent(r.Header.Get(TraceparentHeader))
	if !ok {
		return NewTrace()
	}
	t.State = r.Header.Get(TracestateHeader)
	return t
}

type traceKey struct{}

// WithTrace returns ctx carrying t.
func WithTrace(ctx context.Context, t Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// TraceFrom returns the trace ctx carries, if any.
func TraceFrom(ctx context.Context) (Trace, bool) {
	t, ok := ctx.Value(traceKey{}).(Trace)
	return t, ok
}

// TraceID returns the trace id ctx carries, or "".
func TraceID(ctx context.Context) string {
	t, _ := TraceFrom(ctx)
	return t.TraceID
}

// Inject sets the trace headers of an outgoing request (to the app's
// sidecar) from ctx, so the sidecar's span is a child of the app's request.
func Inject(ctx context.Context, h http.Header) {
	t, ok := TraceFrom(ctx)
	if !ok {
		return
	}
	h.Set(TraceparentHeader, t.Traceparent())
	if t.State != "" {
		h.Set(TracestateHeader, t.State)
	} else {
		h.Del(TracestateHeader)
	}
}

// StartAtEdge is for the public edge (the gateway): a client does not choose
// the trace its request joins, or whether it is sampled. Every request starts
// a new trace, and the answer names its id in X-Trace-Id.
func StartAtEdge(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := NewTrace()
		r.Header.Set(TraceparentHeader, t.Traceparent())
		r.Header.Del(TracestateHeader)
		w.Header().Set(TraceIDHeader, t.TraceID)
		h.ServeHTTP(w, r)
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	for {
		_, _ = rand.Read(b)
		if s := hex.EncodeToString(b); !allZero(s) {
			return s
		}
	}
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool { return strings.Trim(s, "0") == "" }

// WithTraceMetadata returns a copy of meta with the trace of ctx added as
// traceparent (and tracestate), for the state operation whose value Dapr's
// outbox publishes: the outbox copies that operation's metadata into the
// event's CloudEvent fields. daprd 1.18.2 stages the event with the
// transaction's trace in `traceid` but an empty `traceparent`, and a
// subscriber's sidecar reads `traceparent` first, so without this the event's
// delivery would start a trace of its own instead of joining the order's.
func WithTraceMetadata(ctx context.Context, meta map[string]string) map[string]string {
	out := make(map[string]string, len(meta)+2)
	for k, v := range meta {
		out[k] = v
	}
	if t, ok := TraceFrom(ctx); ok {
		out[TraceparentHeader] = t.Traceparent()
		if t.State != "" {
			out[TracestateHeader] = t.State
		}
	}
	return out
}
