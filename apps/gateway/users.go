package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/gorilla/mux"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// UserReader serves GET /api/users/{id} with the tutorial's fallback: when
// users cannot answer (it is down, or the circuit breaker in front of it is
// open) the last copy the gateway saw is served, marked "cached": true,
// instead of an error.
type UserReader struct {
	Invoker *sidecar.Invoker
	AppID   string
	Copies  *UserCopies
	Log     *slog.Logger
}

// ServeHTTP reads a user through users, or falls back to the last copy.
func (u *UserReader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if !api.ValidID(id) {
		api.WriteError(w, r, u.Log, api.Errorf(api.CodeNotFound, "user %q not found", id))
		return
	}
	res, err := u.Invoker.Invoke(r.Context(), u.AppID, http.MethodGet, "users/"+id, nil)
	switch {
	case err == nil && res.Status == http.StatusOK:
		u.Copies.Put(id, res.Body)
		writeRaw(w, http.StatusOK, res.Body)
		return
	case err == nil && res.Status < 500:
		if res.Status == http.StatusNotFound {
			u.Copies.Forget(id)
		}
		writeRaw(w, res.Status, res.Body)
		return
	}
	// users did not answer: serve the last known copy, if any.
	if copy, ok := u.Copies.Get(id); ok {
		var doc map[string]any
		if json.Unmarshal(copy, &doc) == nil {
			doc["cached"] = true
			fallbacksServed.Inc()
			api.WriteJSON(w, http.StatusOK, doc)
			return
		}
	}
	if err == nil {
		err = errors.Join(api.ErrUnavailable, errors.New("users answered "+http.StatusText(res.Status)))
	}
	api.WriteError(w, r, u.Log, err)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// UserCopies keeps the last copy of each user read through the gateway, up
// to a bound; past it the oldest copies go first.
type UserCopies struct {
	mu    sync.Mutex
	max   int
	byID  map[string][]byte
	order []string // ids, oldest first
}

// NewUserCopies returns a store of at most max copies.
func NewUserCopies(max int) *UserCopies {
	return &UserCopies{max: max, byID: map[string][]byte{}}
}

// Put keeps a copy of a user's JSON.
func (c *UserCopies) Put(id string, doc []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[id]; !ok {
		c.order = append(c.order, id)
	}
	c.byID[id] = append([]byte(nil), doc...)
	for len(c.byID) > c.max && len(c.order) > 0 {
		oldest := c.order[0]
		c.order = c.order[1:]
		delete(c.byID, oldest)
	}
}

// Get returns the last copy of a user.
func (c *UserCopies) Get(id string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	doc, ok := c.byID[id]
	return doc, ok
}

// Forget drops a user that no longer exists, and its place in the eviction
// order: left there, it would make the store evict a live copy early (it
// counts as one of max) and grow the order slice without bound.
func (c *UserCopies) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[id]; !ok {
		return
	}
	delete(c.byID, id)
	c.order = slices.DeleteFunc(c.order, func(o string) bool { return o == id })
}
