package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/config"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// AuthConfig says whose tokens the gateway accepts.
type AuthConfig struct {
	// JWKS is the identity provider's public keys: a file, or an http(s)
	// URL such as Keycloak's .../protocol/openid-connect/certs.
	JWKS string // AUTH_JWKS (required)
	// Issuer and Audience must match the token's iss and aud.
	Issuer   string // AUTH_ISSUER
	Audience string // AUTH_AUDIENCE
	// Skew is how far the gateway's clock may be from the issuer's when
	// exp, nbf and iat are checked.
	Skew time.Duration // AUTH_CLOCK_SKEW
	// Refresh is how often the keys are read again (a provider rotates
	// them); a token with a key id not seen yet also triggers a read, at
	// most once per MinRefresh.
	Refresh time.Duration // AUTH_JWKS_REFRESH
}

// LoadAuthConfig reads the token settings. Without AUTH_JWKS the gateway
// does not start: it never serves the API unauthenticated.
func LoadAuthConfig(getenv config.Getenv) (AuthConfig, error) {
	c := AuthConfig{
		JWKS:     getenv("AUTH_JWKS"),
		Issuer:   config.StringVar(getenv, "AUTH_ISSUER", "ordermesh-dev"),
		Audience: config.StringVar(getenv, "AUTH_AUDIENCE", "ordermesh"),
	}
	if c.JWKS == "" {
		return c, errors.New("AUTH_JWKS is not set: name the identity provider's JWKS (a file or an http(s) URL); `make run` makes a development one in .run/auth/jwks.json")
	}
	var err error
	if c.Skew, err = config.DurationVar(getenv, "AUTH_CLOCK_SKEW", 30*time.Second); err != nil {
		return c, err
	}
	if c.Refresh, err = config.DurationVar(getenv, "AUTH_JWKS_REFRESH", 5*time.Minute); err != nil {
		return c, err
	}
	return c, nil
}

// Algorithms the gateway accepts. Anything else, "none" and the HMAC family
// above all (a verifier that let HS256 through could be fed the public key
// as the shared secret), fails before any key is looked at.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256}

// MaxTokenBytes bounds a bearer token; a real one is well under 2 KiB.
const MaxTokenBytes = 8 << 10

// Keys finds a verification key by its key id ("" when the token names
// none).
type Keys interface {
	Key(ctx context.Context, kid string) (jose.JSONWebKey, error)
}

// Verifier checks bearer tokens: signature (ES256 or RS256, by a key of the
// issuer's JWKS), issuer, audience, and expiry with a small clock skew.
type Verifier struct {
	Keys     Keys
	Issuer   string
	Audience string
	Skew     time.Duration
	Now      func() time.Time
}

// errNotAllowed marks a valid token whose holder has no role here (403).
var errNotAllowed = errors.New("the token grants no role of this shop")

// tokenClaims are the claims the gateway reads.
type tokenClaims struct {
	jwt.Claims
	Roles []string `json:"roles"`
}

// Verify returns the caller a token speaks for. Its errors say why, for the
// log; none of them quotes the token. errNotAllowed (wrapped) means the
// token is good but grants nothing.
func (v *Verifier) Verify(ctx context.Context, raw string) (identity.Caller, error) {
	if len(raw) > MaxTokenBytes {
		return identity.Caller{}, errors.New("token too long")
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil {
		return identity.Caller{}, fmt.Errorf("parse: %w", err)
	}
	if len(tok.Headers) != 1 {
		return identity.Caller{}, errors.New("not exactly one signature")
	}
	h := tok.Headers[0]
	key, err := v.Keys.Key(ctx, h.KeyID)
	if err != nil {
		return identity.Caller{}, err
	}
	if !keyFits(key, jose.SignatureAlgorithm(h.Algorithm)) {
		return identity.Caller{}, fmt.Errorf("key %q is not for %s", key.KeyID, h.Algorithm)
	}
	var c tokenClaims
	if err := tok.Claims(key.Key, &c); err != nil {
		return identity.Caller{}, fmt.Errorf("signature: %w", err)
	}
	if c.Expiry == nil {
		return identity.Caller{}, errors.New("token has no expiry")
	}
	if c.Subject == "" {
		return identity.Caller{}, errors.New("token has no subject")
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: v.Issuer, AnyAudience: jwt.Audience{v.Audience}, Time: now()}, v.Skew); err != nil {
		return identity.Caller{}, err
	}
	var caller identity.Caller
	switch {
	case slices.Contains(c.Roles, string(identity.Operator)):
		caller = identity.Caller{Role: identity.Operator, Subject: c.Subject}
	case slices.Contains(c.Roles, string(identity.Customer)):
		caller = identity.Caller{Role: identity.Customer, Subject: c.Subject}
	default:
		return identity.Caller{}, errNotAllowed
	}
	if !caller.Valid() {
		return identity.Caller{}, fmt.Errorf("%w: subject is not a %s id", errNotAllowed, caller.Role)
	}
	return caller, nil
}

// keyFits reports whether key may verify alg: a public key of alg's type,
// and alg itself if the key names one.
func keyFits(key jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if key.Algorithm != "" && key.Algorithm != string(alg) {
		return false
	}
	if key.Use != "" && key.Use != "sig" {
		return false
	}
	switch k := key.Key.(type) {
	case *ecdsa.PublicKey:
		return alg == jose.ES256 && k.Curve.Params().Name == "P-256"
	case *rsa.PublicKey:
		return alg == jose.RS256 && k.N.BitLen() >= 2048
	}
	return false
}

// access says who may call a public route.
type access uint8

const (
	// anyone: no token needed.
	anyone access = 1 << iota
	// customers: a customer token; the services serve it only its own data.
	customers
	// operators: an operator token.
	operators
	// own: the route serves per-user data; a customer gets only its own,
	// and another customer's is answered as if it did not exist (checked by
	// the gateway where the request names the user, and by the service).
	own
)

// String is the README's "who" column for a route.
func (a access) String() string {
	var who []string
	if a&anyone != 0 {
		who = append(who, "anyone")
	}
	if a&customers != 0 {
		c := "customer"
		if a&own != 0 {
			c += " (own)"
		}
		who = append(who, c)
	}
	if a&operators != 0 {
		who = append(who, "operator")
	}
	return strings.Join(who, ", ")
}

func (a access) allows(r identity.Role) bool {
	switch r {
	case identity.Customer:
		return a&customers != 0
	case identity.Operator:
		return a&operators != 0
	}
	return false
}

// Authenticator guards the public routes with bearer tokens.
type Authenticator struct {
	Verifier *Verifier
	Log      *slog.Logger
}

// Guard wraps a route: anyone's routes pass as they are; the others need a
// valid bearer token (401 without one, or with a bad one) whose role may call
// the route (403 otherwise). The caller goes into the request's context, for
// Forward to carry inward. If owner names the user a request is about (from
// its path or query), a customer asking about another user gets 404, as if
// the resource did not exist.
func (a *Authenticator) Guard(who access, owner func(*http.Request) string, h http.Handler) http.Handler {
	if who&anyone != 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r)
		if !ok {
			unauthorized(w, "this call needs a bearer token (Authorization: Bearer <token>)")
			return
		}
		// Refusals are logged at debug level only: a client sending bad
		// tokens must not be able to fill the logs. The token never is.
		caller, err := a.Verifier.Verify(r.Context(), raw)
		if errors.Is(err, errNotAllowed) {
			a.Log.DebugContext(r.Context(), "token refused", "path", r.URL.Path, "why", err.Error())
			api.WriteJSON(w, http.StatusForbidden, api.ErrorBody{Error: api.Error{Code: api.CodeForbidden, Message: "your token does not allow this call"}})
			return
		}
		if err != nil {
			a.Log.DebugContext(r.Context(), "token refused", "path", r.URL.Path, "why", err.Error())
			unauthorized(w, "the bearer token is not valid (signature, issuer, audience or expiry)")
			return
		}
		if !who.allows(caller.Role) {
			api.WriteJSON(w, http.StatusForbidden, api.ErrorBody{Error: api.Error{Code: api.CodeForbidden, Message: "a " + string(caller.Role) + " may not make this call"}})
			return
		}
		if owner != nil && !caller.Sees(owner(r)) {
			api.WriteJSON(w, http.StatusNotFound, api.ErrorBody{Error: api.Error{Code: api.CodeNotFound, Message: "not found"}})
			return
		}
		h.ServeHTTP(w, r.WithContext(identity.WithCaller(r.Context(), caller)))
	})
}

// bearer reads the token of an "Authorization: Bearer <token>" header; one
// such header, nothing else.
func bearer(r *http.Request) (string, bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ordermesh"`)
	api.WriteJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: api.Error{Code: api.CodeUnauthorized, Message: msg}})
}
