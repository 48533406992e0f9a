// Command payments takes payments for orders, idempotently: a client retry
// with the same Idempotency-Key never pays twice, and an order is paid at most
// once. It checks orders through the orders app, keeps its data in
// `paymentstore`, whose transactional outbox announces each payment on the
// `payments` topic of `orderpubsub` in the transaction that stores it, and
// finishes payments whose attempt died half-way (Cashier.Reconcile).
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

func main() { server.Main("payments", run) }

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.LoadSidecar(getenv, "payments", 8084)
	if err != nil {
		return err
	}
	storeName := config.StringVar(getenv, "STATE_STORE", "paymentstore")
	attempt, err := config.DurationVar(getenv, "PAYMENT_ATTEMPT_TIMEOUT", defaultAttemptTimeout)
	if err != nil {
		return err
	}
	staleAfter, err := config.DurationVar(getenv, "PAYMENT_STALE_AFTER", defaultStaleAfter)
	if err != nil {
		return err
	}
	reconcileEvery, err := config.DurationVar(getenv, "PAYMENT_RECONCILE_EVERY", 5*time.Second)
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
	httpClient := sidecar.NewHTTPClient(30 * time.Second)
	invoker := sidecar.NewInvoker(cfg.DaprHTTPEndpoint(), cfg.DaprAPIToken, httpClient)

	cashier := NewCashier(
		statePayments{store},
		ordersService{invoker: invoker, appID: peers.Orders},
		func() time.Time { return time.Now().UTC() },
		uuid.NewString,
	)
	if err := cashier.SetTimings(attempt, staleAfter); err != nil {
		return err
	}
	cashier.step = faults.ExitAt(getenv, log)
	go cashier.RunReconciler(ctx, reconcileEvery, log)
	ready := health.Ready(
		health.Check{Name: "sidecar", Probe: func(ctx context.Context) error { return sidecar.Health(ctx, httpClient, cfg.DaprHTTPEndpoint()) }},
		health.Check{Name: storeName, Probe: store.Ping},
	)
	if err := server.Serve(ctx, log, cfg.ListenAddress(), appHandler(cfg.AppAPIToken, log, cashier, ready), server.Shutdown{Delay: cfg.ShutdownDelay, Drain: cfg.ShutdownTimeout}); err != nil {
		return fmt.Errorf("payments: %w", err)
	}
	return nil
}
