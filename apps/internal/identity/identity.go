// Package identity carries the end user a request acts for from the gateway,
// which verifies the client's bearer token, to the services behind it.
//
// The gateway puts the verified caller in one header, Header, after removing
// any copy a client sent; the services' public routes are reachable only
// from the gateway's sidecar (access policies in dapr/config.yaml), so a
// value there was set by the gateway. The services check it again (defence
// in depth): a route that serves one user's data refuses a request without
// an identity, and answers another customer's resource as if it did not
// exist. Calls between services (/internal/ routes, events) act for no end
// user and carry no identity; they are guarded by the access policies.
package identity

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// Header carries the caller, as "<role>:<subject>". Only the gateway sets it.
const Header = "X-Ordermesh-Caller"

// Role is what a caller may do.
type Role string

// The roles of the shop.
const (
	// Customer orders, pays and reads its own orders, payments and
	// notifications; its subject is its user id.
	Customer Role = "customer"
	// Operator runs the shop: catalogue, shipping, dead letters, status.
	Operator Role = "operator"
)

// maxSubject bounds a subject: a user id is at most 64 characters, and an
// identity provider's subjects (UUIDs, e-mail-like ids) fit well under this.
const maxSubject = 255

// Caller is the verified end user a request acts for.
type Caller struct {
	Role    Role
	Subject string
}

// String is the header form of the caller.
func (c Caller) String() string { return string(c.Role) + ":" + c.Subject }

// Valid reports whether c can be carried: a known role, and a subject that is
// a user id for a customer and printable ASCII without ':' for an operator.
func (c Caller) Valid() bool {
	switch c.Role {
	case Customer:
		return api.ValidID(c.Subject)
	case Operator:
		if c.Subject == "" || len(c.Subject) > maxSubject {
			return false
		}
		for i := 0; i < len(c.Subject); i++ {
			if b := c.Subject[i]; b < 0x21 || b > 0x7e {
				return false
			}
		}
		return true
	}
	return false
}

// Parse reads the header form of a caller.
func Parse(v string) (Caller, bool) {
	role, sub, ok := strings.Cut(v, ":")
	c := Caller{Role: Role(role), Subject: sub}
	if !ok || !c.Valid() {
		return Caller{}, false
	}
	return c, true
}

// Sees reports whether c may see a resource that belongs to user userID:
// a customer sees only its own, an operator any.
func (c Caller) Sees(userID string) bool {
	switch c.Role {
	case Operator:
		return true
	case Customer:
		return c.Subject == userID
	}
	return false
}

// Strip removes every copy of the identity header, as a client might send
// it: the gateway calls it on each request before it sets its own.
func Strip(h http.Header) {
	for name := range h {
		if strings.EqualFold(name, Header) {
			delete(h, name)
		}
	}
}

// Set strips h of any identity and puts c in it.
func Set(h http.Header, c Caller) {
	Strip(h)
	h.Set(Header, c.String())
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// From returns the caller a request acts for, as Require put it in its
// context.
func From(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Require wraps a service's public route: the request must carry exactly
// one valid identity with one of roles, else it is refused with 403 JSON
// (the gateway answers a client's missing or bad token with 401 before this;
// a caller here without an identity is a service that forgot to pass it on,
// or not the gateway at all). The caller is put in the request's context.
func Require(h http.Handler, roles ...Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values(Header)
		if len(values) != 1 {
			api.WriteJSON(w, http.StatusForbidden, api.ErrorBody{Error: api.Error{Code: api.CodeForbidden, Message: "this route serves end users: the request carries no caller identity"}})
			return
		}
		c, ok := Parse(values[0])
		if !ok || !slices.Contains(roles, c.Role) {
			api.WriteJSON(w, http.StatusForbidden, api.ErrorBody{Error: api.Error{Code: api.CodeForbidden, Message: "the caller may not do this"}})
			return
		}
		h.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
	})
}

// RequireFunc is Require for a handler function.
func RequireFunc(h http.HandlerFunc, roles ...Role) http.Handler { return Require(h, roles...) }

// Sees reports whether the caller of ctx (put there by Require) may see a
// resource of user userID. Without a caller it is false.
func Sees(ctx context.Context, userID string) bool {
	c, ok := From(ctx)
	return ok && c.Sees(userID)
}
