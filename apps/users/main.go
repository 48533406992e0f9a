// Command users is the user service: it registers users with unique emails and
// serves them by id. It keeps its data in the Dapr state store `statestore`.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ordermesh/ordermesh/apps/internal/config"
	"github.com/ordermesh/ordermesh/apps/internal/faults"
	"github.com/ordermesh/ordermesh/apps/internal/health"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

func main() { server.Main("users", run) }

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.LoadSidecar(getenv, "users", 8081)
	if err != nil {
		return err
	}
	storeName := config.StringVar(getenv, "STATE_STORE", "statestore")
	staleClaim, err := config.DurationVar(getenv, "EMAIL_CLAIM_STALE_AFTER", 30*time.Second)
	if err != nil {
		return err
	}
	timeout, err := config.DurationVar(getenv, "REGISTER_TIMEOUT", 10*time.Second)
	if err != nil {
		return err
	}
	log := server.NewLogger(cfg.AppID, cfg.LogLevel)

	client, err := sidecar.Connect(cfg.DaprGRPCAddress(), cfg.DaprAPIToken, log)
	if err != nil {
		return err
	}
	defer client.Close()
	store := sidecar.NewStore(client, storeName)
	probe := sidecar.NewHTTPClient(2 * time.Second)

	registry := &Registry{
		Store:      stateDirectory{store},
		Now:        func() time.Time { return time.Now().UTC() },
		NewID:      uuid.NewString,
		StaleClaim: staleClaim,
		Timeout:    timeout,
		Step:       faults.ExitAt(getenv, log),
	}
	if staleClaim <= registry.WorstCase() {
		return fmt.Errorf("EMAIL_CLAIM_STALE_AFTER (%s) must be longer than a registration's worst case (%s, 1.5 × REGISTER_TIMEOUT)", staleClaim, registry.WorstCase())
	}
	ready := health.Ready(
		health.Check{Name: "sidecar", Probe: func(ctx context.Context) error { return sidecar.Health(ctx, probe, cfg.DaprHTTPEndpoint()) }},
		health.Check{Name: storeName, Probe: store.Ping},
	)
	if err := server.Serve(ctx, log, cfg.ListenAddress(), appHandler(cfg.AppAPIToken, log, registry, ready), server.Shutdown{Delay: cfg.ShutdownDelay, Drain: cfg.ShutdownTimeout}); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	return nil
}
