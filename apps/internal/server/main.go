package server

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main runs an app's run function with a context that ends on SIGINT or
// SIGTERM, and exits 1 if it fails. Every app's main is one call to it.
// PPROF_ADDR (a loopback address, unset by default) serves the app's runtime
// profiles there, for `make bench`.
func Main(appID string, run func(ctx context.Context, getenv func(string) string) error) {
	if _, err := ServeProfiles(os.Getenv("PPROF_ADDR")); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", appID, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", appID, err)
		stop()
		os.Exit(1)
	}
}
