package main

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/events"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// appHandler is what the app serves: its routes, reachable only with the
// app token its sidecar sends (none when appToken is "").
func appHandler(appToken string, log *slog.Logger, n *Notifier, ready http.Handler) http.Handler {
	return server.RequireAppToken(appToken, routes(log, n, ready))
}

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

// NextCursorHeader carries the cursor of the next page of a list; it is
// absent on the last page. The body stays the plain JSON list it always was.
const NextCursorHeader = "Next-Cursor"

func pageRequest(r *http.Request) PageRequest {
	q := r.URL.Query()
	return PageRequest{Limit: q.Get("limit"), Cursor: q.Get("cursor")}
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	page, err := h.notifier.Notifications(r.Context(), r.URL.Query().Get("user_id"), pageRequest(r))
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	writePage(w, page)
}

func (h handlers) deadLetters(w http.ResponseWriter, r *http.Request) {
	page, err := h.notifier.DeadLetters(r.Context(), pageRequest(r))
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	writePage(w, page)
}

// writePage answers a page: its entries as a JSON list (never null), and the
// next cursor in NextCursorHeader if there is more.
func writePage[T any](w http.ResponseWriter, p Page[T]) {
	if c := p.Cursor(); c != "" {
		w.Header().Set(NextCursorHeader, c)
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	api.WriteJSON(w, http.StatusOK, p.Items)
}

func (h handlers) orderEvent(w http.ResponseWriter, r *http.Request) {
	raw, ce, err := events.Read(w, r)
	if err != nil {
		h.log.WarnContext(r.Context(), "undecodable event dropped", "err", err)
		events.Respond(w, events.Drop)
		return
	}
	outcome, err := h.notifier.HandleOrderEvent(r.Context(), ce)
	if err != nil {
		h.log.WarnContext(r.Context(), "order event not handled", "event_id", ce.ID, "outcome", outcome, "err", err, "size", len(raw))
	}
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
	events.Respond(w, outcome)
}
