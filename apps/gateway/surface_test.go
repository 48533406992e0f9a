package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordermesh/ordermesh/apps/internal/surface"
)

// Every route the gateway serves is listed in apps/internal/surface, and
// nothing listed is missing.
func TestSurface(t *testing.T) {
	idp := newTestIdP(t)
	surface.Require(t, "gateway", testRoutes(newTestGateway(t, "http://127.0.0.1:1"), idp, defaultPeers))
}

// The gateway's public routes are exactly the surface's public rows of the
// services, plus /api/status, and each forwards to the route it names.
func TestSurfacePublicRowsAreThePublicAPI(t *testing.T) {
	var fromServices []string
	for _, r := range surface.Routes {
		if r.App != "gateway" && r.Public != "" {
			fromServices = append(fromServices, r.Public)
		}
	}
	var api []string
	for _, rt := range PublicAPI {
		if rt.Service != "" {
			api = append(api, rt.Method+" "+rt.Path)
		}
	}
	assert.ElementsMatch(t, api, fromServices)
}
