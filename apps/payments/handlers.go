package main

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
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
	// Public routes, reached from the gateway with the caller it verified
	// (identity.Require): a customer pays and reads only its own orders'.
	r.Handle("/payments", identity.RequireFunc(h.pay, identity.Customer)).Methods(http.MethodPost)
	r.Handle("/payments/{id}", identity.RequireFunc(h.payment, identity.Customer)).Methods(http.MethodGet)
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
	if api.ValidID(in.OrderID) {
		if err := h.ownOrder(r, in.OrderID); err != nil {
			api.WriteError(w, r, h.log, err)
			return
		}
	}
	p, replayed, err := h.cashier.Pay(r.Context(), r.Header.Get(IdempotencyKeyHeader), in)
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	w.Header().Set("Location", "/payments/"+p.ID)
	status, result := http.StatusCreated, "paid"
	if replayed {
		result = "replayed"
		w.Header().Set(ReplayedHeader, "true")
		status = http.StatusOK
	}
	payments.WithLabelValues(result).Inc()
	api.WriteJSON(w, status, p)
}

func (h handlers) payment(w http.ResponseWriter, r *http.Request) {
	p, err := h.cashier.Payment(r.Context(), mux.Vars(r)["id"])
	if err == nil {
		if ownErr := h.ownOrder(r, p.OrderID); ownErr != nil {
			err = ownErr
			var refusal *api.Error
			if errors.As(ownErr, &refusal) { // another customer's: as if absent
				err = api.Errorf(api.CodeNotFound, "payment %q not found", p.ID)
			}
		}
	}
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, p)
}

// ownOrder checks that the request's caller may act on order orderID: an
// order that is not the caller's is answered as unknown, exactly like one
// that does not exist, so a customer cannot tell the two apart.
func (h handlers) ownOrder(r *http.Request, orderID string) error {
	o, err := h.cashier.orders.Order(r.Context(), orderID)
	if err == nil && !identity.Sees(r.Context(), o.UserID) {
		err = ErrUnknownOrder
	}
	if errors.Is(err, ErrUnknownOrder) {
		return api.Errorf(api.CodeUnknownOrder, "order %s does not exist", orderID)
	}
	return err
}
