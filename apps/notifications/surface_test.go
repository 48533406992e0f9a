package main

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/ordermesh/ordermesh/apps/internal/surface"
)

// Every route notifications serves is listed in apps/internal/surface with who may
// reach it, and nothing listed is missing.
func TestSurface(t *testing.T) {
	surface.Require(t, "notifications", routes(slog.New(slog.DiscardHandler), nil, http.NotFoundHandler()))
}
