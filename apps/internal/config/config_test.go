package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/config"
)

// env returns a Getenv that reads from vars only.
func env(vars map[string]string) config.Getenv {
	return func(name string) string { return vars[name] }
}

func TestLoadSidecar(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want config.Sidecar
	}{
		{
			name: "defaults",
			vars: nil,
			want: config.Sidecar{
				AppID: "users", AppPort: 8081, DaprHTTPPort: 3500, DaprGRPCPort: 50001,
				DaprHost: "127.0.0.1", ShutdownTimeout: 10 * time.Second, ListenHost: "127.0.0.1", LogLevel: "info",
			},
		},
		{
			name: "every variable overrides its default",
			vars: map[string]string{
				"APP_ID": "users-blue", "APP_PORT": "9001", "DAPR_HTTP_PORT": "3600",
				"DAPR_GRPC_PORT": "50101", "DAPR_HOST": "daprd", "SHUTDOWN_TIMEOUT": "250ms", "SHUTDOWN_DELAY": "30s",
				"LISTEN_HOST": "0.0.0.0", "DAPR_API_TOKEN": "t-dapr", "APP_API_TOKEN": "t-app", "LOG_LEVEL": "debug",
			},
			want: config.Sidecar{
				AppID: "users-blue", AppPort: 9001, DaprHTTPPort: 3600, DaprGRPCPort: 50101,
				DaprHost: "daprd", ShutdownTimeout: 250 * time.Millisecond, ShutdownDelay: 30 * time.Second,
				ListenHost: "0.0.0.0", DaprAPIToken: "t-dapr", AppAPIToken: "t-app", LogLevel: "debug",
			},
		},
		{
			name: "empty values keep the defaults",
			vars: map[string]string{"APP_ID": "", "APP_PORT": "", "DAPR_HOST": "", "SHUTDOWN_TIMEOUT": ""},
			want: config.Sidecar{
				AppID: "users", AppPort: 8081, DaprHTTPPort: 3500, DaprGRPCPort: 50001,
				DaprHost: "127.0.0.1", ShutdownTimeout: 10 * time.Second, ListenHost: "127.0.0.1", LogLevel: "info",
			},
		},
		{
			name: "port bounds are accepted",
			vars: map[string]string{"APP_PORT": "0", "DAPR_HTTP_PORT": "65535"},
			want: config.Sidecar{
				AppID: "users", AppPort: 0, DaprHTTPPort: 65535, DaprGRPCPort: 50001,
				DaprHost: "127.0.0.1", ShutdownTimeout: 10 * time.Second, ListenHost: "127.0.0.1", LogLevel: "info",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.LoadSidecar(env(tt.vars), "users", 8081)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLoadSidecarInvalid(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr string
	}{
		{"app port not a number", map[string]string{"APP_PORT": "http"}, `APP_PORT="http"`},
		{"app port negative", map[string]string{"APP_PORT": "-1"}, `APP_PORT="-1"`},
		{"app port too large", map[string]string{"APP_PORT": "65536"}, `APP_PORT="65536"`},
		{"app port with spaces", map[string]string{"APP_PORT": " 8080"}, `APP_PORT=" 8080"`},
		{"http port invalid", map[string]string{"DAPR_HTTP_PORT": "3500x"}, `DAPR_HTTP_PORT="3500x"`},
		{"grpc port invalid", map[string]string{"DAPR_GRPC_PORT": "1e3"}, `DAPR_GRPC_PORT="1e3"`},
		{"shutdown timeout without unit", map[string]string{"SHUTDOWN_TIMEOUT": "10"}, `SHUTDOWN_TIMEOUT="10"`},
		{"shutdown timeout negative", map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, `SHUTDOWN_TIMEOUT="-1s"`},
		{"shutdown delay without unit", map[string]string{"SHUTDOWN_DELAY": "30"}, `SHUTDOWN_DELAY="30"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.LoadSidecar(env(tt.vars), "users", 8081)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestSidecarAddresses(t *testing.T) {
	c, err := config.LoadSidecar(env(map[string]string{"DAPR_HOST": "10.0.0.5", "DAPR_HTTP_PORT": "3501", "DAPR_GRPC_PORT": "50002"}), "orders", 8083)
	require.NoError(t, err)

	assert.Equal(t, "http://10.0.0.5:3501", c.DaprHTTPEndpoint())
	assert.Equal(t, "10.0.0.5:50002", c.DaprGRPCAddress())
	assert.Equal(t, "127.0.0.1:8083", c.ListenAddress(), "apps bind loopback unless told otherwise")
}

func TestVars(t *testing.T) {
	getenv := env(map[string]string{"PORT": "8090", "BAD_PORT": "x", "WAIT": "3s", "BAD_WAIT": "soon", "STORE": "orderstore"})

	tests := []struct {
		name    string
		read    func() (any, error)
		want    any
		wantErr bool
	}{
		{"port set", func() (any, error) { return config.PortVar(getenv, "PORT", 1) }, 8090, false},
		{"port unset", func() (any, error) { return config.PortVar(getenv, "NOPE", 1) }, 1, false},
		{"port invalid", func() (any, error) { return config.PortVar(getenv, "BAD_PORT", 1) }, nil, true},
		{"duration set", func() (any, error) { return config.DurationVar(getenv, "WAIT", time.Second) }, 3 * time.Second, false},
		{"duration unset", func() (any, error) { return config.DurationVar(getenv, "NOPE", time.Second) }, time.Second, false},
		{"duration invalid", func() (any, error) { return config.DurationVar(getenv, "BAD_WAIT", time.Second) }, nil, true},
		{"string set", func() (any, error) { return config.StringVar(getenv, "STORE", "statestore"), nil }, "orderstore", false},
		{"string unset", func() (any, error) { return config.StringVar(getenv, "NOPE", "statestore"), nil }, "statestore", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read()
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLoadPeers(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want config.Peers
	}{
		{
			name: "defaults are the ids in dapr.yaml",
			want: config.Peers{Users: "users", Products: "products", Orders: "orders", Payments: "payments", Notifications: "notifications"},
		},
		{
			name: "each id can be overridden",
			vars: map[string]string{
				"USERS_APP_ID": "u2", "PRODUCTS_APP_ID": "p2", "ORDERS_APP_ID": "o2",
				"PAYMENTS_APP_ID": "pay2", "NOTIFICATIONS_APP_ID": "n2",
			},
			want: config.Peers{Users: "u2", Products: "p2", Orders: "o2", Payments: "pay2", Notifications: "n2"},
		},
		{
			name: "one override leaves the others",
			vars: map[string]string{"ORDERS_APP_ID": "orders-e2e"},
			want: config.Peers{Users: "users", Products: "products", Orders: "orders-e2e", Payments: "payments", Notifications: "notifications"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, config.LoadPeers(env(tt.vars)))
		})
	}
}
