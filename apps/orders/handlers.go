package main

import (
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
