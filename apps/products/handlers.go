package main

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// routes registers every route of the products app.
func routes(log *slog.Logger, c *Catalog, ready http.Handler) http.Handler {
	h := handlers{log: log, catalog: c}
	r := server.NewRouter(ready)
	r.HandleFunc("/products", h.add).Methods(http.MethodPost)
	r.HandleFunc("/products", h.list).Methods(http.MethodGet)
	r.HandleFunc("/products/{id}", h.get).Methods(http.MethodGet)
	r.HandleFunc("/products/{id}/reservations", h.reserve).Methods(http.MethodPost)
	r.HandleFunc("/products/{id}/reservations/{order_id}", h.release).Methods(http.MethodDelete)
	// What orders calls: the same operations, answered the internal way
	// (refusals in a 200, see api.InternalAnswer).
	r.HandleFunc("/internal/products/{id}/reservations", h.reserveInternal).Methods(http.MethodPost)
	r.HandleFunc("/internal/products/{id}/reservations/{order_id}", h.releaseInternal).Methods(http.MethodDelete)
	return server.Handler(log, r)
}

type handlers struct {
	log     *slog.Logger
	catalog *Catalog
}

func (h handlers) add(w http.ResponseWriter, r *http.Request) {
	var in NewProduct
	if err := api.Decode(w, r, &in); err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	p, err := h.catalog.Add(r.Context(), in)
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	w.Header().Set("Location", "/products/"+p.ID)
	api.WriteJSON(w, http.StatusCreated, p)
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	ps, err := h.catalog.List(r.Context())
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, ps)
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	p, err := h.catalog.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, p)
}

func (h handlers) reserve(w http.ResponseWriter, r *http.Request) {
	var in ReservationRequest
	if err := api.Decode(w, r, &in); err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	res, replayed, err := h.catalog.Reserve(r.Context(), mux.Vars(r)["id"], in)
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
	}
	api.WriteJSON(w, status, res)
}

func (h handlers) release(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	if err := h.catalog.Release(r.Context(), vars["id"], vars["order_id"]); err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ReservationAnswer is what an internal reservation returns: the reservation
// (with the unit price it was made at) and whether it was made before.
type ReservationAnswer struct {
	Reservation Reservation `json:"reservation"`
	Replayed    bool        `json:"replayed"`
}

func (h handlers) reserveInternal(w http.ResponseWriter, r *http.Request) {
	var in ReservationRequest
	if err := api.Decode(w, r, &in); err != nil {
		api.WriteInternal(w, r, h.log, nil, err)
		return
	}
	res, replayed, err := h.catalog.Reserve(r.Context(), mux.Vars(r)["id"], in)
	if err != nil {
		api.WriteInternal(w, r, h.log, nil, err)
		return
	}
	api.WriteInternal(w, r, h.log, ReservationAnswer{Reservation: res, Replayed: replayed}, nil)
}

func (h handlers) releaseInternal(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	err := h.catalog.Release(r.Context(), vars["id"], vars["order_id"])
	api.WriteInternal(w, r, h.log, map[string]bool{"released": err == nil}, err)
}
