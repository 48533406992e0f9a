package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/events"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// routes registers every route of the orders app.
func routes(log *slog.Logger, d *Desk, ready http.Handler) http.Handler {
	h := handlers{log: log, desk: d}
	r := server.NewRouter(ready)
	// Public routes, reached from the gateway with the caller it verified
	// (identity.Require): a customer orders for itself and reads its own
	// orders, an operator reads and ships.
	r.Handle("/orders", identity.RequireFunc(h.place, identity.Customer)).Methods(http.MethodPost)
	r.Handle("/orders/{id}", identity.RequireFunc(h.order, identity.Customer, identity.Operator)).Methods(http.MethodGet)
	r.Handle("/orders/{id}/ship", identity.RequireFunc(h.ship, identity.Operator)).Methods(http.MethodPost)
	// What payments calls: an order read answered the internal way.
	r.HandleFunc("/internal/orders/{id}", h.orderInternal).Methods(http.MethodGet)
	// Where Dapr delivers payments' events (dapr/resources/subscriptions.yaml).
	r.HandleFunc("/events/payments", h.paymentEvent).Methods(http.MethodPost)
	return server.Handler(log, r)
}

type handlers struct {
	log  *slog.Logger
	desk *Desk
}

func (h handlers) place(w http.ResponseWriter, r *http.Request) {
	var in NewOrder
	if err := api.Decode(w, r, &in); err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	if api.ValidID(in.UserID) && !identity.Sees(r.Context(), in.UserID) { // another customer: as if unknown
		api.WriteError(w, r, h.log, api.Errorf(api.CodeUnknownUser, "user %s does not exist", in.UserID))
		return
	}
	o, err := h.desk.Place(r.Context(), in)
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	ordersPlaced.Inc()
	w.Header().Set("Location", "/orders/"+o.ID)
	api.WriteJSON(w, http.StatusCreated, o)
}

func (h handlers) order(w http.ResponseWriter, r *http.Request) {
	o, err := h.desk.Order(r.Context(), mux.Vars(r)["id"])
	if err == nil && !identity.Sees(r.Context(), o.UserID) { // another customer's: as if absent
		err = api.Errorf(api.CodeNotFound, "order %q not found", o.ID)
	}
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, o)
}

func (h handlers) ship(w http.ResponseWriter, r *http.Request) {
	o, err := h.desk.Ship(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, o)
}

func (h handlers) orderInternal(w http.ResponseWriter, r *http.Request) {
	o, err := h.desk.Order(r.Context(), mux.Vars(r)["id"])
	api.WriteInternal(w, r, h.log, o, err)
}

// paymentEvent handles payment_completed. Dapr reads the outcome from the
// body: SUCCESS acknowledges, RETRY redelivers, DROP dead-letters.
func (h handlers) paymentEvent(w http.ResponseWriter, r *http.Request) {
	_, ce, err := events.Read(w, r)
	var ev PaymentCompleted
	if err == nil {
		err = ce.DecodeData(&ev)
	}
	if err == nil && (ev.Type != "payment_completed" || !api.ValidID(ev.OrderID) || !api.ValidID(ev.PaymentID)) {
		err = fmt.Errorf("not a payment_completed event: type %q", ev.Type)
	}
	if err != nil {
		h.log.WarnContext(r.Context(), "payment event dropped", "event_id", ce.ID, "err", err)
		events.Respond(w, events.Drop)
		return
	}
	err = h.desk.MarkPaid(r.Context(), ev)
	switch {
	case err == nil:
		events.Respond(w, events.Success)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
		h.log.WarnContext(r.Context(), "payment event dropped", "event_id", ce.ID, "order_id", ev.OrderID, "err", err)
		events.Respond(w, events.Drop)
	default:
		h.log.WarnContext(r.Context(), "payment event to retry", "event_id", ce.ID, "err", err)
		events.Respond(w, events.Retry)
	}
}
