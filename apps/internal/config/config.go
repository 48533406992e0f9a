// Package config reads an app's configuration once, from the environment that
// `dapr run` (or compose, or the test harness) gives it, into a typed struct.
package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Sidecar is what every app needs to know about itself and its Dapr sidecar.
type Sidecar struct {
	AppID        string // APP_ID
	AppPort      int    // APP_PORT: where this app listens
	DaprHTTPPort int    // DAPR_HTTP_PORT: the sidecar's HTTP API
	DaprGRPCPort int    // DAPR_GRPC_PORT: the sidecar's gRPC API
	// DaprHost is where the sidecar listens; loopback unless the sidecar runs
	// in another network namespace.
	DaprHost string // DAPR_HOST
	// ShutdownTimeout bounds how long in-flight requests may drain on SIGTERM.
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
	// ShutdownDelay is how long the app keeps serving after SIGTERM before it
	// stops accepting, closing each connection after its answer: on
	// Kubernetes, the time callers need to learn the pod is gone. 0 (the
	// default) stops accepting at once.
	ShutdownDelay time.Duration // SHUTDOWN_DELAY
	// ListenHost is the address the app binds: loopback, since only its own
	// sidecar calls it. The gateway, the one public app, overrides it.
	ListenHost string // LISTEN_HOST
	// DaprAPIToken authenticates the app to its sidecar's API; AppAPIToken
	// authenticates the sidecar to the app. Empty means not required.
	DaprAPIToken string // DAPR_API_TOKEN
	AppAPIToken  string // APP_API_TOKEN
	// LogLevel is "debug" for a log line per request, else info.
	LogLevel string // LOG_LEVEL
}

// Getenv is os.Getenv's signature, so tests can pass a map's lookup instead.
type Getenv func(string) string

// LoadSidecar reads the sidecar settings, with defaults for the given app id
// and port that match dapr.yaml.
func LoadSidecar(getenv Getenv, appID string, defaultPort int) (Sidecar, error) {
	c := Sidecar{
		AppID:           appID,
		AppPort:         defaultPort,
		DaprHTTPPort:    3500,
		DaprGRPCPort:    50001,
		DaprHost:        "127.0.0.1",
		ShutdownTimeout: 10 * time.Second,
		ListenHost:      StringVar(getenv, "LISTEN_HOST", "127.0.0.1"),
		DaprAPIToken:    getenv("DAPR_API_TOKEN"),
		AppAPIToken:     getenv("APP_API_TOKEN"),
		LogLevel:        StringVar(getenv, "LOG_LEVEL", "info"),
	}
	var err error
	if v := getenv("APP_ID"); v != "" {
		c.AppID = v
	}
	if v := getenv("DAPR_HOST"); v != "" {
		c.DaprHost = v
	}
	if c.AppPort, err = intVar(getenv, "APP_PORT", c.AppPort); err != nil {
		return c, err
	}
	if c.DaprHTTPPort, err = intVar(getenv, "DAPR_HTTP_PORT", c.DaprHTTPPort); err != nil {
		return c, err
	}
	if c.DaprGRPCPort, err = intVar(getenv, "DAPR_GRPC_PORT", c.DaprGRPCPort); err != nil {
		return c, err
	}
	if c.ShutdownTimeout, err = DurationVar(getenv, "SHUTDOWN_TIMEOUT", c.ShutdownTimeout); err != nil {
		return c, err
	}
	if c.ShutdownDelay, err = DurationVar(getenv, "SHUTDOWN_DELAY", c.ShutdownDelay); err != nil {
		return c, err
	}
	return c, nil
}

// DaprHTTPEndpoint is the base URL of the sidecar's HTTP API.
func (c Sidecar) DaprHTTPEndpoint() string {
	return "http://" + c.DaprHost + ":" + strconv.Itoa(c.DaprHTTPPort)
}

// DaprGRPCAddress is the host:port of the sidecar's gRPC API.
func (c Sidecar) DaprGRPCAddress() string {
	return c.DaprHost + ":" + strconv.Itoa(c.DaprGRPCPort)
}

// ListenAddress is where the app's HTTP server binds.
func (c Sidecar) ListenAddress() string {
	return net.JoinHostPort(c.ListenHost, strconv.Itoa(c.AppPort))
}

// PortVar reads a TCP port number with a default.
func PortVar(getenv Getenv, name string, def int) (int, error) { return intVar(getenv, name, def) }

func intVar(getenv Getenv, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port number", name, v)
	}
	return n, nil
}

// DurationVar reads a Go duration ("250ms", "30s") with a default.
func DurationVar(getenv Getenv, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q is not a duration", name, v)
	}
	return d, nil
}

// StringVar reads a string with a default.
func StringVar(getenv Getenv, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// Peers are the app ids of the services an app calls. They default to the ids
// in dapr.yaml; the end-to-end harness gives every system its own.
type Peers struct {
	Users         string // USERS_APP_ID
	Products      string // PRODUCTS_APP_ID
	Orders        string // ORDERS_APP_ID
	Payments      string // PAYMENTS_APP_ID
	Notifications string // NOTIFICATIONS_APP_ID
}

// LoadPeers reads the peers' app ids.
func LoadPeers(getenv Getenv) Peers {
	return Peers{
		Users:         StringVar(getenv, "USERS_APP_ID", "users"),
		Products:      StringVar(getenv, "PRODUCTS_APP_ID", "products"),
		Orders:        StringVar(getenv, "ORDERS_APP_ID", "orders"),
		Payments:      StringVar(getenv, "PAYMENTS_APP_ID", "payments"),
		Notifications: StringVar(getenv, "NOTIFICATIONS_APP_ID", "notifications"),
	}
}

// MapVar reads "k1=v1,k2=v2" into a map; an empty variable is an empty map.
func MapVar(getenv Getenv, name string) (map[string]string, error) {
	out := map[string]string{}
	v := getenv(name)
	if v == "" {
		return out, nil
	}
	for _, pair := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || k == "" || val == "" {
			return nil, fmt.Errorf("%s: %q is not key=value", name, pair)
		}
		out[k] = val
	}
	return out, nil
}
