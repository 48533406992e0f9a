package main

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// appHandler is what the app serves: its routes, reachable only with the
// app token its sidecar sends (none when appToken is "").
func appHandler(appToken string, log *slog.Logger, reg *Registry, ready http.Handler) http.Handler {
	return server.RequireAppToken(appToken, routes(log, reg, ready))
}

// routes registers every route of the users app.
func routes(log *slog.Logger, reg *Registry, ready http.Handler) http.Handler {
	h := handlers{log: log, reg: reg}
	r := server.NewRouter(ready)
	r.HandleFunc("/users", h.register).Methods(http.MethodPost)
	r.HandleFunc("/users/{id}", h.user).Methods(http.MethodGet)
	// What orders calls: the same read, answered the internal way (an
	// unknown user is a refusal in a 200, see api.InternalAnswer).
	r.HandleFunc("/internal/users/{id}", h.userInternal).Methods(http.MethodGet)
	return server.Handler(log, r)
}

type handlers struct {
	log *slog.Logger
	reg *Registry
}

func (h handlers) register(w http.ResponseWriter, r *http.Request) {
	var in Registration
	if err := api.Decode(w, r, &in); err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	u, err := h.reg.Register(r.Context(), in)
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	w.Header().Set("Location", "/users/"+u.ID)
	api.WriteJSON(w, http.StatusCreated, u)
}

func (h handlers) user(w http.ResponseWriter, r *http.Request) {
	u, err := h.reg.User(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, u)
}

func (h handlers) userInternal(w http.ResponseWriter, r *http.Request) {
	u, err := h.reg.User(r.Context(), mux.Vars(r)["id"])
	api.WriteInternal(w, r, h.log, u, err)
}
