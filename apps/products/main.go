// Command products is the catalogue: products with prices and stock, and the
// stock orders hold for the orders they are placing. It keeps its data in
// `statestore`, and settles holds orders left behind (Repairer).
//
// Test-only: ORDERMESH_EXIT_AT=<step> (faults.ExitAt) makes it exit at one of
// the steps named Step* in products.go, for the end-to-end tests that kill a
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

func main() { server.Main("products", run) }

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.LoadSidecar(getenv, "products", 8082)
	if err != nil {
		return err
	}
	storeName := config.StringVar(getenv, "STATE_STORE", "statestore")
	staleAfter, err := config.DurationVar(getenv, "HOLD_STALE_AFTER", 60*time.Second)
	if err != nil {
		return err
	}
	repairEvery, err := config.DurationVar(getenv, "HOLD_REPAIR_INTERVAL", 10*time.Second)
	if err != nil {
		return err
	}
	peers := config.LoadPeers(getenv)
	log := server.NewLogger(cfg.AppID, cfg.LogLevel)

	client, err := sidecar.Connect(cfg.DaprGRPCAddress(), cfg.DaprAPIToken, log)
	if err != nil {
		return err
	}
	defer client.Close()
	store := sidecar.NewStore(client, storeName)
	probe := sidecar.NewHTTPClient(2 * time.Second)
	invoker := sidecar.NewInvoker(cfg.DaprHTTPEndpoint(), cfg.DaprAPIToken, sidecar.NewHTTPClient(10*time.Second))

	catalog := NewCatalog(stateCatalog{store}, func() time.Time { return time.Now().UTC() }, uuid.NewString, faults.ExitAt(getenv, log))
	repairer := &Repairer{Catalog: catalog, Orders: ordersService{invoker: invoker, appID: peers.Orders}, StaleAfter: staleAfter, Log: log}
	go repairer.Run(ctx, repairEvery)
	ready := health.Ready(
		health.Check{Name: "sidecar", Probe: func(ctx context.Context) error { return sidecar.Health(ctx, probe, cfg.DaprHTTPEndpoint()) }},
		health.Check{Name: storeName, Probe: store.Ping},
	)
	if err := server.Serve(ctx, log, cfg.ListenAddress(), server.RequireAppToken(cfg.AppAPIToken, routes(log, catalog, ready)), server.Shutdown{Delay: cfg.ShutdownDelay, Drain: cfg.ShutdownTimeout}); err != nil {
		return fmt.Errorf("products: %w", err)
	}
	return nil
}
