// Command notifications turns order events into notifications to users (an
// email when an order is created, an SMS when it ships).
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/config"
	"github.com/ordermesh/ordermesh/apps/internal/health"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

func main() { server.Main("notifications", run) }

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.LoadSidecar(getenv, "notifications", 8085)
	if err != nil {
		return err
	}
	storeName := config.StringVar(getenv, "STATE_STORE", "statestore")
	log := server.NewLogger(cfg.AppID, cfg.LogLevel)

	client, err := sidecar.Connect(cfg.DaprGRPCAddress(), cfg.DaprAPIToken, log)
	if err != nil {
		return err
	}
	defer client.Close()
	store := sidecar.NewStore(client, storeName)
	httpClient := sidecar.NewHTTPClient(30 * time.Second)

	ready := health.Ready(
		health.Check{Name: "sidecar", Probe: func(ctx context.Context) error { return sidecar.Health(ctx, httpClient, cfg.DaprHTTPEndpoint()) }},
		health.Check{Name: storeName, Probe: store.Ping},
	)
	notifier := &Notifier{
		Inbox: stateInbox{store: store, maxDeadLetters: 1000},
		Now:   func() time.Time { return time.Now().UTC() },
	}
	if err := server.Serve(ctx, log, cfg.ListenAddress(), appHandler(cfg.AppAPIToken, log, notifier, ready), server.Shutdown{Delay: cfg.ShutdownDelay, Drain: cfg.ShutdownTimeout}); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	return nil
}
