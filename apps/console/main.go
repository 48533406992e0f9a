// Command console is ordermesh's operations console: one read-only page, on
// loopback, that shows every app with its sidecar (version, health,
// components, subscriptions, ports), who calls whom and who publishes and
// consumes which topic (with rate, errors and p99, from the sidecars' metrics
// through Prometheus), the circuit breakers and dead letters, and the latest
// orders, each with its trace drawn from Jaeger and the log lines every app
// wrote for it. Anything unhealthy is marked. It shows no secrets.
//
// With -prometheus-config it prints instead the Prometheus scrape
// configuration for the run file's sidecars and apps (dapr/scripts/obs.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/server"
)

func main() {
	runFile := flag.String("f", "", "the multi-app run file to read the apps from (default $RUN_FILE, else dapr.yaml)")
	promConfig := flag.Bool("prometheus-config", false, "print Prometheus' scrape configuration for the run file's apps and exit")
	flag.Parse()
	server.Main("console", func(ctx context.Context, getenv func(string) string) error {
		return run(ctx, getenv, *runFile, *promConfig)
	})
}

func run(ctx context.Context, getenv func(string) string, runFile string, promConfig bool) error {
	cfg, err := LoadConfig(getenv, runFile)
	if err != nil {
		return err
	}
	if promConfig {
		_, err := os.Stdout.WriteString(PrometheusConfig(cfg.Apps, cfg.ScrapeInterval))
		return err
	}
	log := server.NewLogger("console", cfg.LogLevel)
	client := &http.Client{Timeout: 3 * time.Second}
	prom, err := NewPrometheus(cfg.PrometheusURL)
	if err != nil {
		return err
	}
	c := &Console{
		Apps:       cfg.Apps,
		Sidecars:   &Sidecars{Client: client, Token: cfg.DaprAPIToken},
		Prometheus: prom,
		Jaeger:     &Jaeger{Base: cfg.JaegerURL, Client: client},
		Logs:       &Logs{MaxBytes: 8 << 20},
		Log:        log,
	}
	log.Info("console", "url", "http://"+cfg.ListenAddress(), "apps", len(cfg.Apps), "prometheus", cfg.PrometheusURL, "jaeger", cfg.JaegerURL)
	if err := server.Serve(ctx, log, cfg.ListenAddress(), routes(log, c), server.Shutdown{Drain: 10 * time.Second}); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
