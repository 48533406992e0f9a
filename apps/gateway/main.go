// Command gateway is the shop's public HTTP API. It owns no data: it forwards
// /api/<service>/... to the service of that name through its own Dapr
// sidecar (service invocation), so it only knows app ids, never addresses.
package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/config"
	"github.com/ordermesh/ordermesh/apps/internal/health"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

func main() { server.Main("gateway", run) }

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.LoadSidecar(getenv, "gateway", 8080)
	if err != nil {
		return err
	}
	// The public port: GATEWAY_PORT wins over the APP_PORT dapr gives, since
	// no sidecar ever calls the gateway.
	if cfg.AppPort, err = config.PortVar(getenv, "GATEWAY_PORT", cfg.AppPort); err != nil {
		return err
	}
	// The one app that listens beyond loopback: clients call it.
	cfg.ListenHost = config.StringVar(getenv, "GATEWAY_LISTEN_HOST", "0.0.0.0")
	log := server.NewLogger(cfg.AppID, cfg.LogLevel)
	client := sidecar.NewHTTPClient(30 * time.Second)

	gw := &Gateway{Sidecar: cfg.DaprHTTPEndpoint(), Token: cfg.DaprAPIToken, Client: client, Log: log}
	ready := health.Ready(
		health.Check{Name: "sidecar", Probe: func(ctx context.Context) error { return sidecar.Health(ctx, client, cfg.DaprHTTPEndpoint()) }},
	)
	peers := config.LoadPeers(getenv)
	invoker := sidecar.NewInvoker(cfg.DaprHTTPEndpoint(), cfg.DaprAPIToken, client)
	metrics, err := config.MapVar(getenv, "SIDECAR_METRICS")
	if err != nil {
		return err
	}
	users := &UserReader{Invoker: invoker, AppID: peers.Users, Copies: NewUserCopies(10_000), Log: log}
	status := &Status{
		Invoker: invoker,
		Client:  &http.Client{Timeout: 2 * time.Second},
		Apps: map[string]string{
			"users": peers.Users, "products": peers.Products, "orders": peers.Orders,
			"payments": peers.Payments, "notifications": peers.Notifications,
		},
		Metrics: metrics,
		Log:     log,
	}
	authCfg, err := LoadAuthConfig(getenv)
	if err != nil {
		return err
	}
	keys, err := NewJWKS(ctx, authCfg.JWKS, &http.Client{Timeout: 5 * time.Second}, authCfg.Refresh)
	if err != nil {
		return err
	}
	auth := &Authenticator{
		Verifier: &Verifier{Keys: keys, Issuer: authCfg.Issuer, Audience: authCfg.Audience, Skew: authCfg.Skew},
		Log:      log,
	}
	timeouts, err := LoadTimeouts(getenv)
	if err != nil {
		return err
	}
	h := routes(log, gw, auth, peers, timeouts, ready, map[string]http.Handler{
		"GET /api/users/{id}": users,
		"GET /api/status":     status,
	})
	if err := server.Serve(ctx, log, cfg.ListenAddress(), h, server.Shutdown{Delay: cfg.ShutdownDelay, Drain: cfg.ShutdownTimeout}); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}
