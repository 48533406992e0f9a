package main

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// Headers of the idempotent POST /payments.
const (
	IdempotencyKeyHeader = "Idempotency-Key"
	ReplayedHeader       = "Idempotent-Replayed"
)

// appHandler is what the app serves: its routes, reachable only with the
// app token its sidecar sends (none when appToken is "").
func appHandler(appToken string, log *slog.Logger, c *Cashier, ready http.Handler) http.Handler {
	return server.RequireAppToken(appToken, routes(log, c, ready))
}

// routes registers every route of the payments app.
func routes(log *slog.Logger, c *Cashier, ready http.Handler) http.Handler {
	h := handlers{log: log, cashier: c}
	r := server.NewRouter(ready)
	r.HandleFunc("/payments", h.pay).Methods(http.MethodPost)
	r.HandleFunc("/payments/{id}", h.payment).Methods(http.MethodGet)
	return server.Handler(log, r)
}

type handlers struct {
	log     *slog.Logger
	cashier *Cashier
}

func (h handlers) pay(w http.ResponseWriter, r *http.Request) {
	keys := r.Header.Values(IdempotencyKeyHeader)
	if len(keys) > 1 {
		api.WriteError(w, r, h.log, api.Errorf(api.CodeInvalidRequest, "send one %s header, not %d", IdempotencyKeyHeader, len(keys)))
		return
	}
	var in PaymentRequest
	if err := api.Decode(w, r, &in); err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	p, replayed, err := h.cashier.Pay(r.Context(), r.Header.Get(IdempotencyKeyHeader), in)
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	w.Header().Set("Location", "/payments/"+p.ID)
	status := http.StatusCreated
	if replayed {
		w.Header().Set(ReplayedHeader, "true")
		status = http.StatusOK
	}
	api.WriteJSON(w, status, p)
}

func (h handlers) payment(w http.ResponseWriter, r *http.Request) {
	p, err := h.cashier.Payment(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, p)
}
