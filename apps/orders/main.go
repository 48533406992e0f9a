// Command orders takes orders: it checks the user and the product through
// their services, reserves stock, and stores the order in its own PostgreSQL
// database (the Dapr state store `orderstore`).
//
// Test-only: ORDERMESH_EXIT_AT=<step> (faults.ExitAt) makes it exit at one of
// the steps named Step* in orders.go, for the end-to-end tests that kill a
// process between two steps of a write.
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

func main() { server.Main("orders", run) }

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.LoadSidecar(getenv, "orders", 8083)
	if err != nil {
		return err
	}
	storeName := config.StringVar(getenv, "ORDER_STORE", "orderstore")
	peers := config.LoadPeers(getenv)
	placeDeadline, err := config.DurationVar(getenv, "ORDER_PLACE_DEADLINE", 20*time.Second)
	if err != nil {
		return err
	}
	shipLease, err := config.DurationVar(getenv, "SHIP_LEASE", 30*time.Second)
	if err != nil {
		return err
	}
	writeTimeout, err := config.DurationVar(getenv, "ORDER_WRITE_TIMEOUT", 4*time.Second)
	if err != nil {
		return err
	}
	if writeTimeout >= 10*time.Second {
		return fmt.Errorf("ORDER_WRITE_TIMEOUT (%s) must stay under 10 s: Dapr's outbox discards the event of a transaction it does not see committed within about 11 s", writeTimeout)
	}
	log := server.NewLogger(cfg.AppID, cfg.LogLevel)

	client, err := sidecar.Connect(cfg.DaprGRPCAddress(), cfg.DaprAPIToken, log)
	if err != nil {
		return err
	}
	defer client.Close()
	store := sidecar.NewStore(client, storeName)
	httpClient := sidecar.NewHTTPClient(30 * time.Second)
	invoker := sidecar.NewInvoker(cfg.DaprHTTPEndpoint(), cfg.DaprAPIToken, httpClient)

	desk := &Desk{
		Users:   usersService{invoker: invoker, appID: peers.Users},
		Catalog: productsService{invoker: invoker, appID: peers.Products},
		Orders:  stateOrders{store},
		Now:     func() time.Time { return time.Now().UTC() },
		NewID:   uuid.NewString,
		Log:     log,

		PlaceDeadline: placeDeadline,
		ShipLease:     shipLease,
		WriteTimeout:  writeTimeout,
		Step:          faults.ExitAt(getenv, log),
	}
	ready := health.Ready(
		health.Check{Name: "sidecar", Probe: func(ctx context.Context) error { return sidecar.Health(ctx, httpClient, cfg.DaprHTTPEndpoint()) }},
		health.Check{Name: storeName, Probe: store.Ping},
	)
	if err := server.Serve(ctx, log, cfg.ListenAddress(), server.RequireAppToken(cfg.AppAPIToken, routes(log, desk, ready)), server.Shutdown{Delay: cfg.ShutdownDelay, Drain: cfg.ShutdownTimeout}); err != nil {
		return fmt.Errorf("orders: %w", err)
	}
	return nil
}
