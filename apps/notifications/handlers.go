package main

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/events"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// routes registers every route of the notifications app: the public reads,
// and the two routes Dapr delivers events to (see
// dapr/resources/subscriptions.yaml).
func routes(log *slog.Logger, n *Notifier, ready http.Handler) http.Handler {
	h := handlers{log: log, notifier: n}
	r := server.NewRouter(ready)
	r.HandleFunc("/notifications", h.list).Methods(http.MethodGet)
	r.HandleFunc("/notifications/dead-letters", h.deadLetters).Methods(http.MethodGet)
	r.HandleFunc("/events/orders", h.orderEvent).Methods(http.MethodPost)
	r.HandleFunc("/events/dead-letters", h.deadLetter).Methods(http.MethodPost)
	return server.Handler(log, r)
}

type handlers struct {
	log      *slog.Logger
	notifier *Notifier
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	list, err := h.notifier.Notifications(r.Context(), r.URL.Query().Get("user_id"))
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	if list == nil {
		list = []Notification{}
	}
	api.WriteJSON(w, http.StatusOK, list)
}

func (h handlers) deadLetters(w http.ResponseWriter, r *http.Request) {
	list, err := h.notifier.Inbox.DeadLetters(r.Context())
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	if list == nil {
		list = []DeadLetter{}
	}
	api.WriteJSON(w, http.StatusOK, list)
}

func (h handlers) orderEvent(w http.ResponseWriter, r *http.Request) {
	raw, ce, err := events.Read(w, r)
	if err != nil {
		h.log.WarnContext(r.Context(), "undecodable event dropped", "err", err)
		countEvent("order", events.Drop)
		events.Respond(w, events.Drop)
		return
	}
	outcome, err := h.notifier.HandleOrderEvent(r.Context(), ce)
	if err != nil {
		h.log.WarnContext(r.Context(), "order event not handled", "event_id", ce.ID, "outcome", outcome, "err", err, "size", len(raw))
	}
	countEvent("order", outcome)
	events.Respond(w, outcome)
}

func (h handlers) deadLetter(w http.ResponseWriter, r *http.Request) {
	raw, ce, readErr := events.Read(w, r) // an undecodable dead letter is kept as it is
	var tooLarge *http.MaxBytesError
	if errors.As(readErr, &tooLarge) {
		ce.ID = "" // an id read from a cut body is not to be trusted
	}
	outcome, err := h.notifier.HandleDeadLetter(r.Context(), ce, raw)
	if err != nil {
		h.log.WarnContext(r.Context(), "dead letter not stored", "event_id", ce.ID, "err", err)
	}
	countEvent("dead_letter", outcome)
	events.Respond(w, outcome)
}
