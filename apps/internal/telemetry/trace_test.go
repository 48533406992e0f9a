package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

const (
	traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanID  = "00f067aa0ba902b7"
)

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		ok      bool
		sampled bool
	}{
		{"sampled", "00-" + traceID + "-" + spanID + "-01", true, true},
		{"not sampled", "00-" + traceID + "-" + spanID + "-00", true, false},
		{"other flag bits", "00-" + traceID + "-" + spanID + "-03", true, true},
		{"a later version with more fields", "cc-" + traceID + "-" + spanID + "-01-what-the-future-holds", true, true},
		{"version 00 with more fields", "00-" + traceID + "-" + spanID + "-01-x", false, false},
		{"version ff is invalid", "ff-" + traceID + "-" + spanID + "-01", false, false},
		{"zero trace id", "00-00000000000000000000000000000000-" + spanID + "-01", false, false},
		{"zero span id", "00-" + traceID + "-0000000000000000-01", false, false},
		{"upper case", "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + spanID + "-01", false, false},
		{"short trace id", "00-4bf92f-" + spanID + "-01", false, false},
		{"not hex", "00-" + traceID + "-00f067aa0ba902bz-01", false, false},
		{"empty", "", false, false},
		{"garbage", "hello", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := telemetry.ParseTraceparent(tt.in)
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, traceID, got.TraceID)
			assert.Equal(t, spanID, got.SpanID)
			assert.Equal(t, tt.sampled, got.Sampled)
		})
	}
}

func TestNewTraceRoundTrips(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		tr := telemetry.NewTrace()
		back, ok := telemetry.ParseTraceparent(tr.Traceparent())
		require.True(t, ok, tr.Traceparent())
		assert.Equal(t, tr, back)
		assert.True(t, back.Sampled)
		assert.False(t, seen[tr.TraceID], "trace id %s twice", tr.TraceID)
		seen[tr.TraceID] = true
	}
}

func TestFromRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("traceparent", "00-"+traceID+"-"+spanID+"-01")
	r.Header.Set("tracestate", "vendor=1")
	got := telemetry.FromRequest(r)
	assert.Equal(t, telemetry.Trace{TraceID: traceID, SpanID: spanID, Sampled: true, State: "vendor=1"}, got)

	r.Header.Set("traceparent", "nonsense")
	fresh := telemetry.FromRequest(r)
	assert.NotEqual(t, traceID, fresh.TraceID, "a bad header starts a new trace")
	assert.Len(t, fresh.TraceID, 32)
	assert.Empty(t, fresh.State, "the state of a trace not joined is not kept")
}

func TestInject(t *testing.T) {
	h := http.Header{}
	telemetry.Inject(context.Background(), h)
	assert.Empty(t, h, "no trace, no headers")

	ctx := telemetry.WithTrace(context.Background(), telemetry.Trace{TraceID: traceID, SpanID: spanID, Sampled: true, State: "a=b"})
	telemetry.Inject(ctx, h)
	assert.Equal(t, "00-"+traceID+"-"+spanID+"-01", h.Get("traceparent"))
	assert.Equal(t, "a=b", h.Get("tracestate"))
}

func TestStartAtEdgeIgnoresTheClientsTrace(t *testing.T) {
	var seen string
	h := telemetry.StartAtEdge(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("traceparent")
		assert.Empty(t, r.Header.Get("tracestate"))
	}))
	r := httptest.NewRequest(http.MethodGet, "/api/users", nil)
	r.Header.Set("traceparent", "00-"+traceID+"-"+spanID+"-00") // a client asking not to be sampled
	r.Header.Set("tracestate", "evil=1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	tr, ok := telemetry.ParseTraceparent(seen)
	require.True(t, ok, seen)
	assert.NotEqual(t, traceID, tr.TraceID)
	assert.True(t, tr.Sampled)
	assert.Equal(t, tr.TraceID, w.Header().Get(telemetry.TraceIDHeader))
}

func TestLogHandlerAddsTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("app_id", "users")
	ctx := telemetry.WithTrace(context.Background(), telemetry.Trace{TraceID: traceID, SpanID: spanID})

	log.InfoContext(ctx, "with a trace")
	log.WithGroup("g").InfoContext(context.Background(), "without one", "k", "v")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var first, second map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &first))
	require.NoError(t, json.Unmarshal(lines[1], &second))
	assert.Equal(t, traceID, first["trace_id"])
	assert.Equal(t, "users", first["app_id"])
	assert.NotContains(t, second, "trace_id")
}

func TestUnaryClientInterceptorSendsTraceparent(t *testing.T) {
	ctx := telemetry.WithTrace(context.Background(), telemetry.Trace{TraceID: traceID, SpanID: spanID, Sampled: true})
	var md metadata.MD
	err := telemetry.UnaryClientInterceptor(ctx, "/dapr.proto.runtime.v1.Dapr/ExecuteStateTransaction", nil, nil, nil,
		func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
			md, _ = metadata.FromOutgoingContext(ctx)
			return nil
		})
	require.NoError(t, err)
	assert.Equal(t, []string{"00-" + traceID + "-" + spanID + "-01"}, md.Get("traceparent"))
}

func TestWithTraceMetadata(t *testing.T) {
	meta := map[string]string{"contentType": "application/json"}
	ctx := telemetry.WithTrace(context.Background(), telemetry.Trace{TraceID: traceID, SpanID: spanID, Sampled: true})
	got := telemetry.WithTraceMetadata(ctx, meta)
	assert.Equal(t, map[string]string{"contentType": "application/json", "traceparent": "00-" + traceID + "-" + spanID + "-01"}, got)
	assert.Equal(t, map[string]string{"contentType": "application/json"}, meta, "the shared map is not changed")
	assert.Equal(t, meta, telemetry.WithTraceMetadata(context.Background(), meta), "no trace, nothing added")
}
