package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestServeShutdown: once its context ends, Serve keeps answering for the
// delay, each answer closing its connection (so a client's keep-alive
// connection always ends after an answer, never under a request it is
// sending), then stops accepting. Without a delay it stops at once.
func TestServeShutdown(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
	}{
		{"no delay: stops accepting at once", 0},
		{"with a delay: serves on, closing each connection after its answer", 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			served := make(chan error, 1)
			go func() {
				served <- server.Serve(ctx, slog.New(slog.DiscardHandler), addr, h, server.Shutdown{Delay: tt.delay, Drain: 2 * time.Second})
			}()
			client := &http.Client{Timeout: 2 * time.Second}
			get := func() (*http.Response, error) {
				res, err := client.Get("http://" + addr + "/")
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				return res, err
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				res, err := get()
				if err == nil {
					require.Equal(t, http.StatusOK, res.StatusCode)
					assert.False(t, res.Close, "a keep-alive connection while serving")
					break
				}
				require.True(t, time.Now().Before(deadline), "the server never answered: %v", err)
				time.Sleep(10 * time.Millisecond)
			}

			stopped := time.Now()
			cancel()
			if tt.delay > 0 {
				// Until the server has seen its context end, answers may still
				// keep their connection; every request is answered.
				for {
					res, err := get()
					require.NoError(t, err, "a request during the delay")
					if res.Close {
						break
					}
					require.Less(t, time.Since(stopped), tt.delay/2, "no answer closed its connection")
				}
				// From then on every answer closes its connection, and the
				// client's next request opens a new one, which is answered too.
				var answered int
				for time.Since(stopped) < tt.delay/2 {
					res, err := get()
					require.NoError(t, err, "a request during the delay")
					require.Equal(t, http.StatusOK, res.StatusCode)
					require.True(t, res.Close, "an answer during the delay closes its connection")
					answered++
				}
				t.Logf("%d answers during the delay, each closing its connection", answered)
			}
			select {
			case err := <-served:
				require.NoError(t, err)
			case <-time.After(tt.delay + 10*time.Second):
				t.Fatal("Serve did not return")
			}
			assert.GreaterOrEqual(t, time.Since(stopped), tt.delay, "Serve kept serving for the delay")
			_, err := get()
			assert.ErrorIs(t, err, syscall.ECONNREFUSED, "nothing listens once Serve returned")
		})
	}
}
