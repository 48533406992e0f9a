package main

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/identity"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// TestRunRequiresTheAppToken starts the app as main does, against a fake
// sidecar, and calls its port directly: with APP_API_TOKEN set, nothing but
// the probes answers without it.
func TestRunRequiresTheAppToken(t *testing.T) {
	fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "paymentstore", Flavor: sidecartest.FlavorRedis, Outbox: "payments"}})
	_, grpcPort, err := net.SplitHostPort(fake.Address)
	require.NoError(t, err)
	appPort := freePort(t)
	env := map[string]string{
		"APP_PORT":         strconv.Itoa(appPort),
		"DAPR_GRPC_PORT":   grpcPort,
		"DAPR_HTTP_PORT":   strconv.Itoa(freePort(t)),
		"APP_API_TOKEN":    "s3cret",
		"SHUTDOWN_TIMEOUT": "1s",
		"LOG_LEVEL":        "error",
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("run did not stop")
		}
	})

	url := "http://127.0.0.1:" + strconv.Itoa(appPort) + "/payments/pay-1"
	get := func(token string) (int, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set(server.AppTokenHeader, token)
		}
		req.Header.Set(identity.Header, "customer:u-1") // as the gateway carries it
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := get(""); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the app never listened on %d", appPort)
		time.Sleep(20 * time.Millisecond)
	}

	status, err := get("")
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status, "no token")
	status, err = get("guess")
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status, "a wrong token")
	status, err = get("s3cret")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, status, "with the token the app answers: no such payment")
}
