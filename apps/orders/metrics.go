package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ordersPlaced counts the orders stored (with their event). Refusals are
// counted by reason in http_server_errors_total{route="/orders",code=...}.
var ordersPlaced = promauto.NewCounter(prometheus.CounterOpts{
	Name: "ordermesh_orders_placed_total",
	Help: "Orders placed: stored together with their order_created event.",
})
