package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/health"
	"github.com/ordermesh/ordermesh/apps/internal/server"
)

// routes registers every route of the console: all read-only.
func routes(log *slog.Logger, c *Console) http.Handler {
	h := pages{c: c, log: log}
	r := server.NewRouter(health.Ready())
	r.HandleFunc("/", h.index).Methods(http.MethodGet)
	r.HandleFunc("/panel", h.panel).Methods(http.MethodGet)
	r.HandleFunc("/traces/{id}", h.trace).Methods(http.MethodGet)
	r.HandleFunc("/api/snapshot", h.snapshot).Methods(http.MethodGet)
	return server.Handler(log, r)
}

type pages struct {
	c   *Console
	log *slog.Logger
}

var traceID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (h pages) index(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "index", h.c.Snapshot(r.Context()))
}

func (h pages) panel(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "panel", h.c.Snapshot(r.Context()))
}

func (h pages) snapshot(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, h.c.Snapshot(r.Context()))
}

func (h pages) trace(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if !traceID.MatchString(id) {
		api.WriteError(w, r, h.log, api.Errorf(api.CodeInvalidRequest, "trace id must be 32 lowercase hex digits"))
		return
	}
	v := h.c.Trace(r.Context(), id)
	status := http.StatusOK
	if !v.Found && v.Error == "" {
		status = http.StatusNotFound
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, "trace", v); err != nil {
		h.log.ErrorContext(r.Context(), "render trace", "err", err)
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// render executes a template into a buffer first, so a failure is a clean
// 500 rather than half a page.
func (h pages) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		api.WriteError(w, r, h.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}
