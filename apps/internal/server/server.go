// Package server runs an app's HTTP server the same way in every app: JSON
// logs with the app id, request ids, panic recovery, timeouts, and a graceful
// shutdown on SIGINT/SIGTERM.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// NewLogger returns the JSON logger every app writes with, tagged with its
// id; level "debug" adds one line per request, anything else logs info and up.
// Every line logged with a request's context carries its trace_id.
func NewLogger(appID, level string) *slog.Logger {
	lvl := slog.LevelInfo
	if level == "debug" {
		lvl = slog.LevelDebug
	}
	return slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: lvl}))).With("app_id", appID)
}

// Shutdown is how Serve stops once its context ends.
type Shutdown struct {
	// Delay: how long the server keeps serving first, answering every request
	// with "Connection: close", so each client's keep-alive connection ends
	// after an answer (never under a request the client is sending) and its
	// next request opens a new one, which a load balancer that has dropped
	// this replica sends elsewhere. 0 stops accepting at once.
	Delay time.Duration
	// Drain: how long in-flight requests may then take to finish.
	Drain time.Duration
}

// Serve listens on addr and serves h until ctx ends; then it keeps serving for
// stop.Delay, closing each connection after its answer, stops accepting
// connections and waits up to stop.Drain for in-flight requests to finish.
func Serve(ctx context.Context, log *slog.Logger, addr string, h http.Handler, stop Shutdown) error {
	var closing atomic.Bool
	srv := &http.Server{
		Addr: addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if closing.Load() {
				w.Header().Set("Connection", "close")
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	log.Info("listening", "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if stop.Delay > 0 {
		log.Info("closing connections after their answers before shutting down", "delay", stop.Delay.String())
		closing.Store(true)
		wait := time.NewTimer(stop.Delay)
		select {
		case err := <-errc:
			wait.Stop()
			return fmt.Errorf("serve: %w", err)
		case <-wait.C:
		}
	}
	log.Info("shutting down", "drain", stop.Drain.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), stop.Drain)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
