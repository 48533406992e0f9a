package telemetry

import (
	"context"
	"log/slog"
)

// LogHandler adds trace_id to every record logged with a context that
// carries a trace, so an app's log lines for one request can be found from
// the trace id (the console does).
type LogHandler struct{ slog.Handler }

// NewLogHandler wraps h.
func NewLogHandler(h slog.Handler) LogHandler { return LogHandler{h} }

// Handle implements slog.Handler.
func (l LogHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := TraceID(ctx); id != "" {
		rec.AddAttrs(slog.String("trace_id", id))
	}
	return l.Handler.Handle(ctx, rec)
}

// WithAttrs implements slog.Handler.
func (l LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{l.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (l LogHandler) WithGroup(name string) slog.Handler {
	return LogHandler{l.Handler.WithGroup(name)}
}
