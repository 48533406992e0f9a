package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// fallbacksServed counts the users served from the gateway's copy because
// users did not answer (down, or its breaker open).
var fallbacksServed = promauto.NewCounter(prometheus.CounterOpts{
	Name: "ordermesh_gateway_fallbacks_total",
	Help: "Users served from the gateway's last known copy (\"cached\": true) because users did not answer.",
})
