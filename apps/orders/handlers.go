package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// routes registers every route of the orders app.
func routes(log *slog.Logger, d *Desk, ready http.Handler) http.Handler {
	h := handlers{log: log, desk: d}
	r := server.NewRouter(ready)
	r.HandleFunc("/orders", h.place).Methods(http.MethodPost)
	r.HandleFunc("/orders/{id}", h.order).Methods(http.MethodGet)
	r.HandleFunc("/orders/{id}/ship", h.ship).Methods(http.MethodPost)
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
	o, err := h.desk.Place(r.Context(), in)
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	w.Header().Set("Location", "/orders/"+o.ID)
	api.WriteJSON(w, http.StatusCreated, o)
}

func (h handlers) order(w http.ResponseWriter, r *http.Request) {
	o, err := h.desk.Order(r.Context(), mux.Vars(r)["id"])
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
	var ce struct {
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxBodyBytes))
	if err == nil {
		err = json.Unmarshal(raw, &ce)
	}
	var ev PaymentCompleted
	if err == nil {
		err = decodeEventData(ce.Data, &ev)
	}
	if err == nil && (ev.Type != "payment_completed" || !api.ValidID(ev.OrderID) || !api.ValidID(ev.PaymentID)) {
		err = fmt.Errorf("not a payment_completed event: type %q", ev.Type)
	}
	if err != nil {
		h.log.WarnContext(r.Context(), "payment event dropped", "event_id", ce.ID, "err", err)
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "DROP"})
		return
	}
	err = h.desk.MarkPaid(r.Context(), ev)
	switch {
	case err == nil:
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "SUCCESS"})
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
		h.log.WarnContext(r.Context(), "payment event dropped", "event_id", ce.ID, "order_id", ev.OrderID, "err", err)
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "DROP"})
	default:
		h.log.WarnContext(r.Context(), "payment event to retry", "event_id", ce.ID, "err", err)
		api.WriteJSON(w, http.StatusInternalServerError, map[string]string{"status": "RETRY"})
	}
}

// decodeEventData reads a CloudEvent's data, which a publisher may have sent
// as a JSON document or as a string holding one.
func decodeEventData(data json.RawMessage, v any) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		data = json.RawMessage(s)
	}
	return json.Unmarshal(data, v)
}
