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
	// Reservations are only for orders (dapr/config.yaml lets no one else
	// call /internal/products), answered the internal way (refusals in a
	// 200, see api.InternalAnswer).
	r.HandleFunc("/internal/products/{id}/reservations", h.reserveInternal).Methods(http.MethodPost)
	r.HandleFunc("/internal/products/{id}/reservations/{order_id}", h.releaseInternal).Methods(http.MethodDelete)
	r.HandleFunc("/internal/products/{id}/reservations/{order_id}/confirm", h.confirmInternal).Methods(http.MethodPost)
	return server.Handler(log, r)
}

// NextCursorHeader carries the cursor of the next page of a list; it is
// absent on the last page. The body is the plain JSON list of the page.
const NextCursorHeader = "Next-Cursor"

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
	q := r.URL.Query()
	page, err := h.catalog.List(r.Context(), q.Get("limit"), q.Get("cursor"))
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	if page.Next != "" {
		w.Header().Set(NextCursorHeader, page.Next)
	}
	api.WriteJSON(w, http.StatusOK, page.Items)
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	p, err := h.catalog.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, p)
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

func (h handlers) confirmInternal(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	err := h.catalog.Confirm(r.Context(), vars["id"], vars["order_id"])
	api.WriteInternal(w, r, h.log, map[string]bool{"confirmed": err == nil}, err)
}
