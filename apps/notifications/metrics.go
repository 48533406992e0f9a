package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ordermesh/ordermesh/apps/internal/events"
)

// eventsHandled counts the events delivered to notifications, by topic kind
// (order event or dead letter) and the answer given (SUCCESS, RETRY, DROP).
var eventsHandled = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ordermesh_notification_events_total",
	Help: "Events delivered to notifications, by kind (order, dead_letter) and outcome (SUCCESS, RETRY, DROP).",
}, []string{"kind", "outcome"})

func countEvent(kind string, outcome events.Outcome) {
	eventsHandled.WithLabelValues(kind, string(outcome)).Inc()
}
