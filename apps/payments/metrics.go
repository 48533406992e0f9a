package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// payments counts payment requests answered with a payment: "paid" the first
// time, "replayed" when an idempotency key came again.
var payments = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ordermesh_payments_total",
	Help: "Payment requests answered with a payment, by result: paid or replayed.",
}, []string{"result"})
